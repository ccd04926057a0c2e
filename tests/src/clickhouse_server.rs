//! A private clickhouse-server per test, for tests that stop and restart ClickHouse. Runs
//! Debian's `clickhouse-server` binary (installed by scripts/test.sh) with its own ports and a
//! data directory under the system temp dir.

use crate::nats_server::free_port;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct ClickHouseServer {
    pub http_port: u16,
    tcp_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl ClickHouseServer {
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(crate::unique("cs-clickhouse"));
        std::fs::create_dir_all(dir.join("data")).expect("clickhouse dir");
        let mut server = Self {
            http_port: free_port(),
            tcp_port: free_port(),
            dir,
            child: None,
        };
        let d = server.dir.display();
        let config = format!(
            "<yandex>
  <logger><level>warning</level><log>{d}/server.log</log><errorlog>{d}/err.log</errorlog><console>0</console></logger>
  <http_port>{}</http_port><tcp_port>{}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{d}/data/</path><tmp_path>{d}/tmp/</tmp_path><user_files_path>{d}/user_files/</user_files_path>
  <format_schema_path>{d}/format_schemas/</format_schema_path>
  <users_config>/etc/clickhouse-server/users.xml</users_config>
  <default_profile>default</default_profile><default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>268435456</mark_cache_size>
</yandex>
",
            server.http_port, server.tcp_port
        );
        std::fs::write(server.dir.join("config.xml"), config).expect("clickhouse config");
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new("/usr/sbin/clickhouse-server")
            .arg(format!(
                "--config-file={}",
                self.dir.join("config.xml").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("clickhouse-server runs (install it with scripts/test.sh)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.http_port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "clickhouse-server did not listen on {}",
                self.http_port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ClickHouseServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
