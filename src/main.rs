fn main() -> std::process::ExitCode {
    sockscope::one_malloc_arena();
    sockscope::cli::main()
}
