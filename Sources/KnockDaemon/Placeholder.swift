// KnockDaemon
