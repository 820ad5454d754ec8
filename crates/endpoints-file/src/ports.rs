//! Ports in the endpoints file: `name = 8080` or `name = { port = 53, protocol = "udp" }`, in file
//! order, with messages that name the port and what is allowed (`port redis: 70000 is not a port
//! number (1-65535)`) instead of serde's "did not match any variant".

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// A port is a number (TCP) or `{ port = 53, protocol = "udp" }`.
pub(crate) enum PortDef {
    Number(u16),
    Full { port: u16, protocol: Option<String> },
}

/// A port number, 1-65535, or an error that says so.
fn port_number<E: serde::de::Error>(n: i128) -> Result<u16, E> {
    u16::try_from(n)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| E::custom(format!("{n} is not a port number (1-65535)")))
}

impl<'de> Deserialize<'de> for PortDef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PortDef;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number (1-65535) or { port = N, protocol = \"tcp\" | \"udp\" }")
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<PortDef, E> {
                port_number(i128::from(n)).map(PortDef::Number)
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<PortDef, E> {
                port_number(i128::from(n)).map(PortDef::Number)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PortDef, A::Error> {
                use serde::de::Error;
                let (mut port, mut protocol) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "port" => {
                            let n: i64 = map.next_value()?;
                            port = Some(port_number(i128::from(n))?);
                        }
                        "protocol" => protocol = Some(map.next_value::<String>()?),
                        other => {
                            return Err(A::Error::custom(format!(
                                "unknown field {other:?}: a port has `port` and `protocol`"
                            )));
                        }
                    }
                }
                let port = port.ok_or_else(|| A::Error::custom("missing `port`"))?;
                Ok(PortDef::Full { port, protocol })
            }
        }
        d.deserialize_any(V)
    }
}

/// Named ports in file order: the first is the primary port.
#[derive(Default)]
pub(crate) struct OrderedPorts(pub(crate) Vec<(String, PortDef)>);

impl<'de> Deserialize<'de> for OrderedPorts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedPorts;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of port name = port number")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedPorts, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key::<String>()? {
                    // The key in the message: "port redis: 70000 is not a port number".
                    let v = map.next_value::<PortDef>().map_err(|e| {
                        <A::Error as serde::de::Error>::custom(format!("port {k}: {e}"))
                    })?;
                    out.push((k, v));
                }
                Ok(OrderedPorts(out))
            }
        }
        d.deserialize_map(V)
    }
}
