//! A running VM's hold on an image, played by `qemu-nbd`: it opens the
//! image for writing and takes QEMU's locks, as a VM does.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// `qemu-nbd` serving an image; stopped when dropped.
pub struct Served {
    child: Child,
}

/// Serve `image` (format `fmt`, qemu's name) until the result is dropped;
/// returns once qemu-nbd holds its locks.
pub fn serve(fmt: &str, image: &Path) -> Served {
    let socket = image.with_file_name("nbd.sock");
    let child = std::process::Command::new("qemu-nbd")
        .args(["-f", fmt, "-t", "-k"])
        .arg(&socket)
        .arg(image)
        .spawn()
        .expect("qemu-nbd runs");
    // Serving means listening and holding the image's lock: wait for
    // both (a loaded machine may show the one before the other).
    let started = Instant::now();
    while !socket.exists() || super::vimg!("info", image).run().code() == Some(0) {
        assert!(started.elapsed().as_secs() < 20, "qemu-nbd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Served { child }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
