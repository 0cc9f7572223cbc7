//! Plain data and pure functions over it: no I/O, no terminal.

pub mod conn_order;
pub mod counter_rows;
pub mod counters;
pub mod diagram;
pub mod explain;
pub mod filter;
pub mod findings;
pub mod fixture;
pub mod format;
pub mod group;
pub mod history;
pub mod holders;
pub mod netns;
pub mod snapshot;
pub mod socket;
pub mod sysctl_advice;
pub mod view;

pub use filter::{Filter, FilterError};
pub use netns::{NamespaceInfo, Namespaces};
pub use snapshot::{Attribution, Snapshot, SourceKind, SystemContext};
pub use socket::{
    ConnKey, Family, HOST_NETNS, Owner, Owners, ProcState, Process, Proto, Socket, TcpInfo,
    TcpState, Timer, TimerKind,
};
