//! The public error of the crate; per-connection problems are logged, never returned.

/// Why the MQTT listener could not be configured or run.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    /// The listener failed (e.g. its address could not be read).
    #[error("mqtt listener: {0}")]
    Io(#[from] std::io::Error),
    /// The configuration cannot work (bad route, stream name or limit).
    #[error("invalid mqtt configuration: {0}")]
    Config(String),
}
