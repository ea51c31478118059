/// The PortKnockO release this build is.
public let portKnockOVersion = "0.1.0-dev"
