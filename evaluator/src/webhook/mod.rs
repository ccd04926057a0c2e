//! Webhook notifications: Standard Webhooks signatures and HTTP delivery attempts with the
//! retry policy receivers expect.

pub mod delivery;
pub mod outbox;
pub mod signing;
