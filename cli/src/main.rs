//! The tidelog command (not written yet).
fn main() {
    eprintln!("tidelog: no commands yet");
    std::process::exit(2);
}
