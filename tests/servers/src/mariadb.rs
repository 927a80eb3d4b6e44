//! MariaDB (Debian `mariadb-server`) and `prometheus-mysqld-exporter`.
//!
//! [`MariaDb::start`] makes a fresh data directory with `mariadb-install-db`,
//! starts `mariadbd` on 127.0.0.1 and a free port (root logs in through the
//! Unix socket only), and creates the user `exporter`@`127.0.0.1` with a
//! password and the grants mysqld_exporter's README asks for, plus
//! `SLAVE MONITOR`, which MariaDB 10.5.9 and later need for
//! `SHOW ALL SLAVES STATUS`.

use crate::{Process, free_port, http_get, require_binary, wait_until};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const MARIADBD: &str = "/usr/sbin/mariadbd";
const INSTALL_DB: &str = "/usr/bin/mariadb-install-db";
const CLIENT: &str = "/usr/bin/mariadb";
const MYSQLD_EXPORTER: &str = "/usr/bin/prometheus-mysqld-exporter";

/// The grants of mysqld_exporter's README, plus `SLAVE MONITOR`.
pub const EXPORTER_GRANTS: &str = "PROCESS, REPLICATION CLIENT, SLAVE MONITOR, SELECT";

/// A running `mariadbd`, stopped by PID when dropped.
#[derive(Debug)]
pub struct MariaDb {
    /// `127.0.0.1:port`.
    pub addr: String,
    pub port: u16,
    /// The monitoring user, `exporter`@`127.0.0.1`.
    pub user: String,
    pub password: String,
    pub socket: PathBuf,
    // Field order matters: the server stops before its directory goes.
    process: Process,
    dir: tempfile::TempDir,
}

static INSTALL_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The `*.err` logs the bootstrap leaves in the data directory, for messages.
fn error_logs(datadir: &Path) -> String {
    std::fs::read_dir(datadir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "err"))
        .map(|p| format!("{}:\n{}", p.display(), std::fs::read_to_string(&p).unwrap_or_default()))
        .collect::<Vec<_>>()
        .join("\n")
}

impl MariaDb {
    /// Start a server with no extra options.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Start a server with extra `mariadbd` options (`--query-response-time-stats=ON`, ...).
    pub fn start_with(extra_args: &[&str]) -> Self {
        require_binary(MARIADBD, "mariadb-server");
        require_binary(INSTALL_DB, "mariadb-server");
        require_binary(CLIENT, "mariadb-client");
        let dir = tempfile::Builder::new().prefix("wasmon-mariadb-").tempdir().expect("tempdir");
        let datadir = dir.path().join("mysql");
        // One bootstrap at a time: tests of one binary start servers in
        // parallel, and concurrent `mariadb-install-db` runs were seen to
        // fail on a loaded machine.
        let install = {
            let _one_at_a_time = INSTALL_LOCK.lock().unwrap_or_else(|p| p.into_inner());
            Command::new(INSTALL_DB)
                .arg("--no-defaults")
                .arg("--user=root")
                .arg(format!("--datadir={}", datadir.display()))
                .arg("--auth-root-authentication-method=socket")
                .arg("--skip-test-db")
                .output()
                .expect("run mariadb-install-db")
        };
        assert!(
            install.status.success(),
            "mariadb-install-db failed ({}):\n{}{}\n{}",
            install.status,
            String::from_utf8_lossy(&install.stdout),
            String::from_utf8_lossy(&install.stderr),
            error_logs(&datadir)
        );

        let port = free_port();
        let socket = dir.path().join("mysqld.sock");
        let error_log = dir.path().join("mysqld.err");
        let mut command = Command::new(MARIADBD);
        command
            .arg("--no-defaults")
            .arg("--user=root")
            .arg(format!("--datadir={}", datadir.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--pid-file={}", dir.path().join("mysqld.pid").display()))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg("--skip-name-resolve")
            .arg(format!("--log-error={}", error_log.display()))
            .args(extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut process = Process::spawn("mariadbd", &mut command);
        wait_until("mariadbd to accept root on its socket", Duration::from_secs(60), || {
            exited_early(&mut process, &error_log);
            root_sql(&socket, "SELECT 1").is_ok()
        });
        let db = MariaDb {
            addr: format!("127.0.0.1:{port}"),
            port,
            user: "exporter".into(),
            password: "exp0rter-Pw".into(),
            socket,
            process,
            dir,
        };
        db.sql(&format!(
            "CREATE USER '{u}'@'127.0.0.1' IDENTIFIED BY '{p}' WITH MAX_USER_CONNECTIONS 10; \
             GRANT {EXPORTER_GRANTS} ON *.* TO '{u}'@'127.0.0.1';",
            u = db.user,
            p = db.password
        ));
        db
    }

    /// The throwaway directory holding data, socket and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// PID of `mariadbd`.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Run SQL as root through the socket; panics with the client's output on failure.
    /// Returns the tab-separated rows without column names.
    pub fn sql(&self, sql: &str) -> String {
        self.try_sql(sql).unwrap_or_else(|e| panic!("mariadb -e {sql:?}: {e}"))
    }

    /// Run SQL as root through the socket.
    pub fn try_sql(&self, sql: &str) -> Result<String, String> {
        root_sql(&self.socket, sql)
    }

    /// Create `name`@`127.0.0.1` with `password` and `grants` (`"PROCESS, SELECT"`, or `""` for none).
    pub fn create_user(&self, name: &str, password: &str, grants: &str) {
        let mut sql = format!("CREATE USER '{name}'@'127.0.0.1' IDENTIFIED BY '{password}';");
        if !grants.is_empty() {
            sql.push_str(&format!(" GRANT {grants} ON *.* TO '{name}'@'127.0.0.1';"));
        }
        self.sql(&sql);
    }
}

fn root_sql(socket: &Path, sql: &str) -> Result<String, String> {
    let out = Command::new(CLIENT)
        .arg("--no-defaults")
        .arg("-S")
        .arg(socket)
        .args(["-uroot", "-N", "-B", "-e", sql])
        .output()
        .map_err(|e| format!("cannot run {CLIENT}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Like [`Process::assert_running`], but the panic shows the server's log.
fn exited_early(process: &mut Process, log: &Path) {
    if let Ok(Some(status)) = process.child.try_wait() {
        let log = std::fs::read_to_string(log).unwrap_or_default();
        panic!("{} exited early with {status}; its log:\n{log}", process.name);
    }
}

/// A running `prometheus-mysqld-exporter` with its default collectors, reading
/// the credentials of a [`MariaDb`] from a my.cnf; stopped by PID when dropped.
#[derive(Debug)]
pub struct MysqldExporter {
    /// `127.0.0.1:port` of its HTTP listener (`/metrics`).
    pub addr: String,
    process: Process,
    dir: tempfile::TempDir,
}

impl MysqldExporter {
    /// Start the exporter against `db` as `db.user`.
    pub fn start(db: &MariaDb) -> Self {
        Self::start_with(db, &[])
    }

    /// Start the exporter with extra flags (`--collect.slave_status=false`, ...).
    pub fn start_with(db: &MariaDb, extra_args: &[&str]) -> Self {
        require_binary(MYSQLD_EXPORTER, "prometheus-mysqld-exporter");
        let dir = tempfile::Builder::new().prefix("wasmon-mysqld-exporter-").tempdir().expect("tempdir");
        let my_cnf = dir.path().join("my.cnf");
        std::fs::write(
            &my_cnf,
            format!("[client]\nuser={}\npassword={}\nhost=127.0.0.1\nport={}\n", db.user, db.password, db.port),
        )
        .expect("write my.cnf");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(dir.path().join("exporter.log")).expect("exporter log");
        let mut command = Command::new(MYSQLD_EXPORTER);
        command
            .arg(format!("--config.my-cnf={}", my_cnf.display()))
            .arg(format!("--web.listen-address={addr}"))
            .args(extra_args)
            .stdout(Stdio::null())
            .stderr(log);
        let mut process = Process::spawn("prometheus-mysqld-exporter", &mut command);
        wait_until("mysqld_exporter to serve /metrics", Duration::from_secs(30), || {
            process.assert_running();
            matches!(http_get(&addr, "/metrics"), Ok((200, body)) if body.contains("\nmysql_up "))
        });
        Self { addr, process, dir }
    }

    /// One scrape of `/metrics`; panics unless it answers 200.
    pub fn scrape(&self) -> String {
        match http_get(&self.addr, "/metrics") {
            Ok((200, body)) => body,
            other => panic!("mysqld_exporter at {}: {other:?}", self.addr),
        }
    }

    /// PID of the exporter.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The exporter's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("exporter.log")).unwrap_or_default()
    }
}
