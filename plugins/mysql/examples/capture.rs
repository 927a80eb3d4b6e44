//! Capture the golden-test fixtures from a real MariaDB: start a throwaway
//! server (tests/servers), scrape it once through a [`Recorder`], and write
//! every query with its answer as JSON.
//!
//! ```sh
//! cargo run -p wasmon-mysql --example capture -- default plugins/mysql/tests/fixtures/mariadb-10.11.json
//! ```
//! Modes: `default`, `query-response-time` (plugin loaded, stats on),
//! `no-slave-monitor` (the usual grants without SLAVE MONITOR), `replica`
//! (a second server replicating from the first).

use std::net::TcpStream;
use std::time::Instant;
use wasmon_mysql::config::MysqlConfig;
use wasmon_mysql::fixture::{Recorder, to_json};
use wasmon_mysql::protocol::Conn;
use wasmon_mysql::scrape;
use wasmon_test_servers::mariadb::MariaDb;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(out)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: capture default|query-response-time|no-slave-monitor|replica OUT.json");
        std::process::exit(2);
    };
    let (_primary, db, user, password) = match mode.as_str() {
        "default" => (None, MariaDb::start(), None, None),
        "query-response-time" => {
            let db = MariaDb::start_with(&["--plugin-load-add=query_response_time", "--query-response-time-stats=ON"]);
            // Some traffic, so the histogram has counts.
            for _ in 0..20 {
                db.sql("SELECT 1");
            }
            (None, db, None, None)
        }
        "no-slave-monitor" => {
            let db = MariaDb::start();
            db.create_user("monitor", "m0nitor-Pw", "PROCESS, REPLICATION CLIENT, SELECT");
            (None, db, Some("monitor"), Some("m0nitor-Pw"))
        }
        "replica" => {
            let (primary, replica) = wasmon_mysql_capture_replica();
            (Some(primary), replica, None, None)
        }
        other => panic!("unknown mode {other}"),
    };
    let user = user.unwrap_or(&db.user).to_string();
    let password = password.unwrap_or(&db.password).to_string();
    let settings = MysqlConfig::load(&format!(r#"{{"user":"{user}"}}"#)).expect("config");
    let started = Instant::now();
    let stream = TcpStream::connect(&db.addr).expect("connect");
    let mut conn = Conn::handshake(stream, &user, password.as_bytes()).expect("login");
    let mut recorder = Recorder { inner: &mut conn, exchanges: Vec::new() };
    let families = scrape::run(&mut recorder, &settings, started).logged();
    let exchanges = recorder.exchanges;
    conn.quit();
    std::fs::write(out, to_json(&exchanges)).expect("write fixture");
    eprintln!("{out}: {} queries, {} families", exchanges.len(), families.len());
}

/// A primary with a binary log and a replica following it.
fn wasmon_mysql_capture_replica() -> (MariaDb, MariaDb) {
    let primary = MariaDb::start_with(&["--server-id=1", "--log-bin=binlog"]);
    // Start the binary log afresh, so the replica does not replay the
    // creation of users it already has.
    primary.sql(
        "SET sql_log_bin=0; CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl-Pw'; \
         GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'; RESET MASTER;",
    );
    let replica = MariaDb::start_with(&["--server-id=2"]);
    replica.sql(&format!(
        "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='repl', MASTER_PASSWORD='repl-Pw', \
         MASTER_USE_GTID=slave_pos; START SLAVE;",
        primary.port
    ));
    primary.sql("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY); INSERT INTO shop.t VALUES (1), (2);");
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    while replica.try_sql("SELECT COUNT(*) FROM shop.t").map(|s| s.trim() == "2") != Ok(true) {
        assert!(Instant::now() < deadline, "replica did not catch up: {}", replica.sql("SHOW ALL SLAVES STATUS\\G"));
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    (primary, replica)
}
