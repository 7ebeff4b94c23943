//! A PostgreSQL server of a test's own, which the test may stop and start again (the shared one
//! on 5432 serves every other test): the chaos runner's, see `switchboard_loadtest::chaos`.

pub use switchboard_loadtest::chaos::postgres::PrivatePostgres;
