//! A fast vCenter client: inventory, tags and change tracking in a handful of calls.
