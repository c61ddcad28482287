//! Rebuild when a migration changes: `sqlx::migrate!` embeds the files at
//! compile time and cannot watch the directory by itself.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
