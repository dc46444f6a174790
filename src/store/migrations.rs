//! The schema migrations, compiled into the binary so that it needs no files beside it.
//!
//! This does what `sqlx::migrate!` does (same versions, descriptions and checksums, so databases
//! migrated by either agree) without sqlx's proc-macro crate: that crate builds its own copies of
//! the SQLite and PostgreSQL drivers, SQLite's C source included, which doubled their share of a
//! clean build. A unit test keeps these lists equal to the `migrations/` directories.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

/// One backend's migration files: `(file name, SQL)`, in version order.
pub(super) type Files = &'static [(&'static str, &'static str)];

/// Both backends' migrations, which have the same files: `(file name, SQL)`, in version order.
macro_rules! embed {
    ($($file:literal),+ $(,)?) => {
        pub(super) const SQLITE: Files =
            &[$(($file, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite/", $file)))),+];
        pub(super) const POSTGRES: Files =
            &[$(($file, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres/", $file)))),+];
    };
}

embed!(
    "0001_foundation.sql",
    "0002_directory_devices.sql",
    "0003_mtd.sql",
    "0004_compliance.sql",
    "0005_worker.sql",
    "0006_rbac.sql",
    "0007_queue_signal.sql",
    "0008_change_order.sql",
    "0010_cache_version.sql",
    "0011_compliance_results.sql",
    "0012_threat_reports_by_device.sql",
    "0013_tls_authority.sql",
    "0014_device_codes.sql",
    "0015_refresh_tokens.sql",
    "0016_sign_in.sql",
    "0017_partner_state_with_verdict.sql",
    "0018_app_protection.sql",
    "0019_report_export_jobs.sql",
    "0020_device_view_keyset.sql",
    "0021_throttling.sql",
    "0022_fault_rules.sql",
    "0023_conditional_access.sql",
);

/// The version a file name starts with (`0011_compliance_results.sql` → 11).
fn version(file: &str) -> i64 {
    file.split('_')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("a migration file name starts with its version and `_`")
}

/// The newest version in `files`: a database at this version needs no migration.
pub(super) fn latest(files: Files) -> i64 {
    files.iter().map(|(file, _)| version(file)).max().unwrap_or(0)
}

fn migration(file: &str, sql: &'static str) -> Migration {
    let (_, rest) = file.split_once('_').expect("a migration file name has a `_`");
    // As sqlx names them: the file name after the version, without `.sql`, `_` read as a space.
    let description = rest.trim_end_matches(".sql").replace('_', " ");
    Migration::new(
        version(file),
        Cow::Owned(description),
        MigrationType::Simple,
        Cow::Borrowed(sql),
        sql.starts_with("-- no-transaction"),
    )
}

#[derive(Debug)]
struct Embedded(Files);

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send>> {
        let mut migrations: Vec<Migration> = self.0.iter().map(|(file, sql)| migration(file, sql)).collect();
        migrations.sort_by_key(|m| m.version);
        Box::pin(std::future::ready(Ok(migrations)))
    }
}

pub(super) async fn migrator(files: Files) -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(Embedded(files)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_disk(dir: &str) -> Vec<(String, String)> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dir);
        let mut files: Vec<(String, String)> = std::fs::read_dir(path)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "sql"))
            .map(|path| {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&path).unwrap())
            })
            .collect();
        files.sort();
        files
    }

    fn embedded(files: Files) -> Vec<(String, String)> {
        files
            .iter()
            .map(|(name, sql)| (name.to_string(), sql.to_string()))
            .collect()
    }

    #[test]
    fn every_migration_file_is_embedded_in_order() {
        assert_eq!(embedded(SQLITE), on_disk("sqlite"));
        assert_eq!(embedded(POSTGRES), on_disk("postgres"));
    }

    #[test]
    fn versions_descriptions_and_checksums_are_sqlx_s() {
        let m = migration("0011_compliance_results.sql", "CREATE TABLE t (x INTEGER);\n");
        assert_eq!(m.version, 11);
        assert_eq!(m.description, "compliance results");
        assert_eq!(m.migration_type, MigrationType::Simple);
        assert!(!m.no_tx);
        // SHA-384 of the SQL text, as `sqlx::migrate!` and `sqlx migrate` record it.
        let hex: String = m.checksum.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "0202bfa706c6f2f2c6c1167583cb779a006e7850b8b9aa6032939776440a5324d4df855a47e01b9599821e240aa6eda9"
        );
        assert_eq!(latest(SQLITE), 23);
        assert_eq!(latest(POSTGRES), 23);
    }
}
