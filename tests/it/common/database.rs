//! PostgreSQL for the tests: a database made for one test on the
//! machine's server (or the cluster the outage test stops), dropped after.

/// A PostgreSQL database made for one test on the machine's server
/// (`MQTRIGGER_TEST_POSTGRES`, default postgres://postgres@127.0.0.1:5432;
/// `scripts/brokers up` makes sure it runs), dropped after it.
pub struct TestDatabase {
    pub url: String,
    server: String,
    name: String,
}

impl TestDatabase {
    fn server() -> String {
        std::env::var("MQTRIGGER_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
    }

    /// The cluster the outage test stops (`scripts/brokers postgres-outage`).
    pub fn outage_server() -> String {
        std::env::var("MQTRIGGER_TEST_POSTGRES_OUTAGE")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5433".into())
    }

    fn admin(server: &str, sql: String) {
        let url = format!("{server}/postgres");
        // The blocking client runs its own runtime: not on a tokio thread.
        std::thread::spawn(move || {
            postgres::Client::connect(&url, postgres::NoTls)
                .unwrap_or_else(|e| {
                    panic!("PostgreSQL must run at {url} (scripts/brokers up): {e}")
                })
                .batch_execute(&sql)
        })
        .join()
        .unwrap()
        .unwrap();
    }

    pub fn new() -> TestDatabase {
        Self::on(&Self::server())
    }

    pub fn on(server: &str) -> TestDatabase {
        let name = format!("mqt_test_{}", uuid::Uuid::new_v4().simple());
        Self::admin(server, format!("CREATE DATABASE {name}"));
        TestDatabase {
            url: format!("{server}/{name}"),
            server: server.to_owned(),
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = std::panic::catch_unwind(|| Self::admin(&self.server, sql));
    }
}
