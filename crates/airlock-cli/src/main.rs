//! The `airlock` command.

fn main() {
    let scanner = airlock::Scanner::default();
    for path in std::env::args_os().skip(1) {
        let report = scanner.scan_path(std::path::Path::new(&path));
        println!("{} {}", report.verdict, report.path);
    }
}
