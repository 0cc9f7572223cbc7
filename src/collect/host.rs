//! This machine's name and kernel release, from `uname(2)`.

/// The node name, as `hostname` prints it.
pub fn host_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// The kernel release (`6.1.0-18-amd64`), as `uname -r` prints it.
pub fn kernel_version() -> String {
    rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_name_and_kernel_release_are_those_of_proc_sys_kernel() {
        let read = |f: &str| {
            std::fs::read_to_string(format!("/proc/sys/kernel/{f}"))
                .unwrap()
                .trim()
                .to_string()
        };
        assert_eq!(host_name(), read("hostname"));
        assert_eq!(kernel_version(), read("osrelease"));
    }
}
