//! Newtypes for the identifiers of the data model, so that an object id can
//! never be passed where a source-list id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.trim().parse().map($name)
            }
        }
    };
}

id_type!(
    /// The global identifier of every process target (frame, catalog, …).
    ObjectId
);
id_type!(
    /// A SourceList identifier.
    Slid
);
id_type!(
    /// A source identifier within one SourceList.
    Sid
);
id_type!(
    /// An AssociateList identifier.
    Alid
);
id_type!(
    /// An association identifier within one AssociateList.
    Aid
);
id_type!(
    /// A job identifier.
    JobId
);
