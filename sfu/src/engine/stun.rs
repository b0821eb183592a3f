//! Just enough STUN (RFC 8489) to route a datagram from an unknown address to its peer.
//!
//! All peers of a shard share one UDP socket. The first packet from a new address is an ICE
//! connectivity check: a STUN Binding request whose USERNAME is
//! `<local ufrag>:<remote ufrag>` (RFC 8445, section 7.2.2). The local ufrag names the peer,
//! and its first [`SHARD_PREFIX_LEN`] characters name the shard that owns the peer.

const HEADER_LEN: usize = 20;
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const BINDING_REQUEST: u16 = 0x0001;
const ATTR_USERNAME: u16 = 0x0006;

/// Length of the shard index in hexadecimal at the start of every local ufrag.
pub const SHARD_PREFIX_LEN: usize = 4;

/// Largest shard count that [`SHARD_PREFIX_LEN`] hexadecimal digits can number.
pub const MAX_SHARDS: usize = 1 << (4 * SHARD_PREFIX_LEN);

/// Returns the ufrag prefix that names shard `index`.
pub fn shard_prefix(index: usize) -> String {
    format!("{index:0width$x}", width = SHARD_PREFIX_LEN)
}

/// Returns the shard index that a local ufrag starts with.
pub fn shard_of_ufrag(ufrag: &str) -> Option<usize> {
    let prefix = ufrag.get(..SHARD_PREFIX_LEN)?;
    if !prefix.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return None;
    }
    usize::from_str_radix(prefix, 16).ok()
}

/// Returns true when the datagram looks like STUN (RFC 7983 demultiplexing plus the
/// magic cookie).
pub fn is_stun(datagram: &[u8]) -> bool {
    datagram.len() >= HEADER_LEN && datagram[0] < 4 && datagram[4..8] == MAGIC_COOKIE
}

/// Returns the local ufrag from the USERNAME of a Binding request, or `None` for any other
/// or malformed datagram.
pub fn binding_request_local_ufrag(datagram: &[u8]) -> Option<&str> {
    if !is_stun(datagram) {
        return None;
    }
    let message_type = u16::from_be_bytes([datagram[0], datagram[1]]);
    if message_type != BINDING_REQUEST {
        return None;
    }
    let length = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    let mut attributes = datagram.get(HEADER_LEN..HEADER_LEN + length)?;

    while attributes.len() >= 4 {
        let kind = u16::from_be_bytes([attributes[0], attributes[1]]);
        let value_len = usize::from(u16::from_be_bytes([attributes[2], attributes[3]]));
        let value = attributes.get(4..4 + value_len)?;
        if kind == ATTR_USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next();
        }
        // Attribute values are padded to a multiple of four bytes.
        let padded = (value_len + 3) & !3;
        attributes = attributes.get(4 + padded..)?;
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn binding_request(username: &str) -> Vec<u8> {
        let mut attribute = Vec::new();
        attribute.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
        attribute.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attribute.extend_from_slice(username.as_bytes());
        while attribute.len() % 4 != 0 {
            attribute.push(0);
        }
        let mut message = Vec::new();
        message.extend_from_slice(&BINDING_REQUEST.to_be_bytes());
        message.extend_from_slice(&(attribute.len() as u16).to_be_bytes());
        message.extend_from_slice(&MAGIC_COOKIE);
        message.extend_from_slice(&[7; 12]);
        message.extend_from_slice(&attribute);
        message
    }

    #[test]
    fn username_gives_local_ufrag() {
        let request = binding_request("serverufrag:clientufrag");
        assert_eq!(binding_request_local_ufrag(&request), Some("serverufrag"));
    }

    #[test]
    fn ufrag_prefix_names_shard() {
        for index in [0, 1, 15, 16, 255, MAX_SHARDS - 1] {
            let ufrag = format!("{}restOfTheUfrag", shard_prefix(index));
            assert_eq!(shard_of_ufrag(&ufrag), Some(index), "{ufrag}");
        }
        assert_eq!(shard_of_ufrag("00g1rest"), None);
        assert_eq!(shard_of_ufrag("+001rest"), None);
        assert_eq!(shard_of_ufrag("001"), None);
    }

    #[test]
    fn truncated_and_foreign_datagrams_are_ignored() {
        let request = binding_request("a:b");
        for cut in 0..request.len() {
            assert_eq!(binding_request_local_ufrag(&request[..cut]), None);
        }
        assert_eq!(binding_request_local_ufrag(&[0x80; 40]), None);
        assert_eq!(binding_request_local_ufrag(&[]), None);
    }

    #[test]
    fn oversized_attribute_length_is_ignored() {
        let mut request = binding_request("a:b");
        request[22] = 0xff;
        request[23] = 0xff;
        assert_eq!(binding_request_local_ufrag(&request), None);
    }
}
