//! `risk-train synth` on a full disk (issue 22, case 1): exit 1, one line naming the
//! output and "No space left on device", the earlier scene intact, no temporary file left.
//! Mounts a 40 KiB tmpfs (root only); where mounting is not allowed it says so and passes
//! without checking.

use std::path::Path;
use std::process::{Command, Stdio};

fn synth(image: &Path, labels: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_risk-train"))
        .args([
            "synth", "--width", "64", "--height", "64", "--seed", "3", "--image",
        ])
        .arg(image)
        .arg("--labels")
        .arg(labels)
        .output()
        .expect("risk-train runs")
}

#[test]
fn synth_on_a_full_disk_fails_and_keeps_the_old_scene() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=40k", "tmpfs"])
        .arg(d)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: mounting a tmpfs is not allowed here (needs root)");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(d);
    let (image, labels) = (d.join("s.tif"), d.join("s_labels.tif"));
    let o = synth(&image, &labels);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let old = std::fs::read(&image).unwrap();
    {
        use std::io::Write;
        let mut f = std::fs::File::create(d.join("filler")).unwrap();
        while f.write_all(&[7u8; 1024]).and_then(|()| f.flush()).is_ok() {}
    }
    let o = synth(&image, &labels);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("s.tif") && err.contains("No space left on device"),
        "{err}"
    );
    assert_eq!(std::fs::read(&image).unwrap(), old, "the earlier scene changed");
    let mut names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["filler", "s.tif", "s_labels.tif"]);
}
