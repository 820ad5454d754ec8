//! ecsdns
