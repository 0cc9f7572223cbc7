fn main() -> std::process::ExitCode {
    sockscope::tune_malloc();
    sockscope::cli::main()
}
