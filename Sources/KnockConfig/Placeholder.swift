// KnockConfig
