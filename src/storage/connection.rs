//! (being written)

/// Checks a connection string's shape without network I/O.
pub fn check_connection_string(_value: &str) -> Result<(), String> {
    Ok(())
}
