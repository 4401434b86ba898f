//! `sqlx::migrate!` embeds `migrations/` at compile time; on stable Rust the
//! macro cannot tell cargo to watch the folder, so a new migration would not
//! rebuild the binary without this.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
