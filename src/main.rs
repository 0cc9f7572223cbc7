fn main() -> std::process::ExitCode {
    sockscope::cli::main()
}
