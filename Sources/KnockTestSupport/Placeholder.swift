// KnockTestSupport
