//! The host-wide cache entry that php-fpm workers share.
//!
//! One file per parameter set in a private directory (0700, ours), holding
//! the last good value, its versions and times, and the failure state (how
//! many fetches failed in a row and when the host may try again). A second
//! file next to it is the single-flight lock: whoever holds `flock` on it is
//! the one process of the host that talks to SSM.
//!
//! The entry is encrypted with AES-256-GCM under a key made at module startup
//! in the php-fpm master. Workers inherit the key through `fork`; it never
//! touches disk, so a copied file is useless, and a restarted master (a new
//! key) starts fresh. The file name carries the key's id, so that two masters
//! sharing the directory never read or overwrite each other's entries. Files
//! are written whole to a temporary name and renamed, so a reader never sees
//! half an entry.
//!
//! Every key leaves files behind: a master restart makes a new key, and any
//! PHP code may pass new names. So the first use of the directory in a
//! process marks the key's owner (the master that made it: pid and start
//! time) and removes the files of keys whose master no longer runs
//! ([`claim_and_sweep`]). That happens in the workers, not in the master:
//! only a worker knows its pool's directory (`php_admin_value`, and `auto`
//! names the worker's uid), and a directory of another user is not the
//! master's to clean.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::digest::{digest, SHA256};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::iam::IamToken;
use crate::SecretString;

const MAGIC: &[u8; 4] = b"SDC1";

/// The encryption key of this php-fpm master and its workers.
pub struct SharedKey {
    key: LessSafeKey,
    id: String,
    /// The process that made the key (the php-fpm master): pid and start time.
    owner: (u32, u64),
}

impl SharedKey {
    /// A new random key. Call once, at module startup.
    pub fn generate() -> Result<SharedKey, String> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(bytes.as_mut())
            .map_err(|_| "no randomness available".to_owned())?;
        let unbound = UnboundKey::new(&AES_256_GCM, bytes.as_ref())
            .map_err(|_| "cannot create the key".to_owned())?;
        let id = hex(&digest(&SHA256, bytes.as_ref()).as_ref()[..6]);
        let pid = std::process::id();
        Ok(SharedKey {
            key: LessSafeKey::new(unbound),
            id,
            owner: (pid, start_time(pid).unwrap_or(0)),
        })
    }

    /// A short, non-secret id of the key (part of the file names).
    pub fn id(&self) -> &str {
        &self.id
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why the shared directory cannot be used.
pub type Unusable = String;

/// Creates (0700) or checks the shared directory: it must be a real directory
/// (not a symlink) owned by this user and closed to others.
pub fn prepare_dir(dir: &Path) -> Result<(), Unusable> {
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut builder = fs::DirBuilder::new();
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder
                .create(dir)
                .or_else(|e| {
                    if e.kind() == io::ErrorKind::AlreadyExists {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })
                .map_err(|e| format!("cannot create {}: {}", dir.display(), e.kind()))?;
            prepare_dir_checked(dir)
        }
        Err(e) => Err(format!("cannot read {}: {}", dir.display(), e.kind())),
        Ok(_) => prepare_dir_checked(dir),
    }
}

fn prepare_dir_checked(dir: &Path) -> Result<(), Unusable> {
    let meta = fs::symlink_metadata(dir)
        .map_err(|e| format!("cannot read {}: {}", dir.display(), e.kind()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    let euid = unsafe { libc::geteuid() };
    if meta.uid() != euid {
        return Err(format!(
            "{} belongs to uid {}, not to this process's uid {}",
            dir.display(),
            meta.uid(),
            euid
        ));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "{} is open to other users (mode {:o}); it must be 0700",
            dir.display(),
            meta.permissions().mode() & 0o777
        ));
    }
    // Writable? (A read-only mount passes the checks above.)
    let probe = dir.join(format!(".probe-{}", std::process::id()));
    File::create(&probe).map_err(|e| format!("cannot write in {}: {}", dir.display(), e.kind()))?;
    let _ = fs::remove_file(probe);
    Ok(())
}

/// When process `pid` started (clock ticks after boot, `/proc/PID/stat`'s
/// 22nd field): with the pid, it tells a process from a later one that got
/// the same pid. `NotFound`: no such process.
fn start_time(pid: u32) -> io::Result<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (2nd field) may hold spaces and parentheses: count
    // from the last ')'. The fields after it start at the 3rd.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(22 - 3))
        .and_then(|field| field.parse().ok())
        .ok_or_else(|| io::Error::other("unreadable /proc/PID/stat"))
}

/// Files of a key with no owner file are left alone for this long after
/// their last change: the owner file may be on its way.
const UNOWNED_GRACE: Duration = Duration::from_secs(60);

/// Marks `key`'s owner in `dir` (once), and removes the files of other keys
/// whose owner no longer runs, or that have no owner file and were not
/// changed for [`UNOWNED_GRACE`]. A key whose owner cannot be checked (a
/// `/proc` mounted with `hidepid`) is kept. Returns how many files went.
/// Call after [`prepare_dir`] succeeded.
pub fn claim_and_sweep(dir: &Path, key: &SharedKey) -> usize {
    let owner_path = dir.join(format!("{}.owner", key.id));
    if fs::symlink_metadata(&owner_path).is_err() {
        let tmp = dir.join(format!("{}.owner.tmp{}", key.id, std::process::id()));
        let written = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .and_then(|mut f| writeln!(f, "{} {}", key.owner.0, key.owner.1));
        if written.is_ok() {
            let _ = fs::rename(&tmp, &owner_path);
        } else {
            let _ = fs::remove_file(&tmp);
        }
    }
    let Ok(listing) = fs::read_dir(dir) else {
        return 0;
    };
    let mut by_key: std::collections::HashMap<String, Vec<(PathBuf, std::time::SystemTime)>> =
        std::collections::HashMap::new();
    for item in listing.flatten() {
        let name = item.file_name();
        let Some(name) = name.to_str() else { continue };
        let id = &name[..name.find(['-', '.']).unwrap_or(name.len())];
        let ours = id.len() == key.id.len() && id.bytes().all(|b| b.is_ascii_hexdigit());
        if !ours || id == key.id {
            continue;
        }
        let changed = item
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or_else(|_| std::time::SystemTime::now());
        by_key
            .entry(id.to_owned())
            .or_default()
            .push((item.path(), changed));
    }
    let mut removed = 0;
    for (id, files) in by_key {
        let gone = match fs::read_to_string(dir.join(format!("{id}.owner"))) {
            Ok(text) => {
                let mut parts = text.split_whitespace().map(|p| p.parse::<u64>().ok());
                match (parts.next().flatten(), parts.next().flatten()) {
                    (Some(pid), Some(started)) => match start_time(pid as u32) {
                        Ok(now_started) => now_started != started,
                        Err(e) => e.kind() == io::ErrorKind::NotFound,
                    },
                    _ => true,
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => files
                .iter()
                .all(|(_, changed)| changed.elapsed().is_ok_and(|age| age > UNOWNED_GRACE)),
            Err(_) => false,
        };
        if gone {
            removed += files
                .iter()
                .filter(|(path, _)| fs::remove_file(path).is_ok())
                .count();
        }
    }
    removed
}

/// What the host knows about one parameter set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SharedEntry {
    /// The last good value, if any.
    pub value: Option<StoredValue>,
    /// Consecutive failed fetches since the last good one.
    pub failures: u32,
    /// `CLOCK_MONOTONIC` ns before which no process of the host may try SSM again.
    pub next_attempt_ns: u64,
    /// The last failure: kind code and message (the message never holds a secret).
    pub last_error: Option<(i32, String)>,
    /// When the last attempt (good or bad) ended.
    pub last_attempt_ns: u64,
    /// The process that made the last attempt: it gets the first go at the
    /// next refresh, so that one worker (not each in turn) holds an AWS client.
    #[serde(default)]
    pub fetched_by_pid: u32,
}

/// A fetched value as stored: the raw parameter value(s), so every process
/// parses what SSM returned.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredValue {
    /// When the fetch ended (`CLOCK_MONOTONIC` ns).
    pub fetched_ns: u64,
    /// How long the fetch took.
    pub duration_us: u64,
    /// The main parameter's value.
    #[serde(with = "secret_serde")]
    pub value: SecretString,
    /// The main parameter's version.
    pub version: i64,
    /// The credentials parameter's value and version, when one is configured.
    #[serde(with = "optional_secret_serde")]
    pub credentials: Option<(SecretString, i64)>,
    /// Refresh-ahead point chosen by the fetcher (ns after `fetched_ns`).
    pub refresh_after_ns: u64,
    /// For a value with `auth=iam`: the token made for it, so that the
    /// host's workers share one token per refresh instead of each signing
    /// (and fetching) its own. Sealed in the entry like the value.
    #[serde(default, with = "optional_token_serde")]
    pub iam_token: Option<IamToken>,
}

mod secret_serde {
    use crate::{ExposeSecret, SecretString};
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(s: &SecretString, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(s.expose_secret())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<SecretString, D::Error> {
        String::deserialize(de).map(SecretString::from)
    }
}

mod optional_secret_serde {
    use crate::{ExposeSecret, SecretString};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    pub fn serialize<S: Serializer>(
        v: &Option<(SecretString, i64)>,
        ser: S,
    ) -> Result<S::Ok, S::Error> {
        v.as_ref()
            .map(|(s, n)| (s.expose_secret(), *n))
            .serialize(ser)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(
        de: D,
    ) -> Result<Option<(SecretString, i64)>, D::Error> {
        Option::<(String, i64)>::deserialize(de).map(|v| v.map(|(s, n)| (SecretString::from(s), n)))
    }
}

mod optional_token_serde {
    use crate::iam::IamToken;
    use crate::{ExposeSecret, SecretString};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    pub fn serialize<S: Serializer>(v: &Option<IamToken>, ser: S) -> Result<S::Ok, S::Error> {
        v.as_ref()
            .map(|t| (t.token.expose_secret(), t.signed_ns, &t.region))
            .serialize(ser)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Option<IamToken>, D::Error> {
        Option::<(String, u64, String)>::deserialize(de).map(|v| {
            v.map(|(token, signed_ns, region)| IamToken {
                token: SecretString::from(token),
                signed_ns,
                region,
            })
        })
    }
}

/// The files of one parameter set.
#[derive(Debug, Clone)]
pub struct SharedSlot {
    path: PathBuf,
    lock_path: PathBuf,
    aad: Vec<u8>,
}

/// Holding it makes this process the host's only fetcher for the slot.
#[derive(Debug)]
pub struct SlotLock(#[allow(dead_code)] File);

impl SharedSlot {
    /// The slot for `names` (the parameter and, if any, the credentials parameter).
    pub fn new(dir: &Path, key: &SharedKey, names: &[&str]) -> SharedSlot {
        let joined = names.join("\n");
        let name_hash = hex(&digest(&SHA256, joined.as_bytes()).as_ref()[..12]);
        let base = format!("{}-{}", key.id, name_hash);
        SharedSlot {
            path: dir.join(format!("{base}.entry")),
            lock_path: dir.join(format!("{base}.lock")),
            // Binds the ciphertext to these names: an entry copied to another
            // slot's file does not decrypt.
            aad: joined.into_bytes(),
        }
    }

    /// The entry file's path (for tests and status).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the entry; `None` when there is none or it cannot be decrypted.
    pub fn read(&self, key: &SharedKey) -> Option<SharedEntry> {
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&self.path)
            .ok()?;
        let mut sealed = Vec::new();
        file.read_to_end(&mut sealed).ok()?;
        let rest = sealed.strip_prefix(MAGIC)?;
        if rest.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buffer = Zeroizing::new(ciphertext.to_vec());
        let plain = key
            .key
            .open_in_place(nonce, Aad::from(&self.aad[..]), &mut buffer)
            .ok()?;
        serde_json::from_slice(plain).ok()
    }

    /// Writes the entry atomically, mode 0600.
    pub fn write(&self, key: &SharedKey, entry: &SharedEntry) -> io::Result<()> {
        let mut buffer = Zeroizing::new(serde_json::to_vec(entry).map_err(io::Error::other)?);
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| io::Error::other("no randomness"))?;
        let mut sealed_tail = std::mem::take(&mut *buffer);
        key.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&self.aad[..]),
                &mut sealed_tail,
            )
            .map_err(|_| io::Error::other("encryption failed"))?;
        let tmp = self
            .path
            .with_extension(format!("tmp{}", std::process::id()));
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        file.write_all(MAGIC)?;
        file.write_all(&nonce)?;
        file.write_all(&sealed_tail)?;
        drop(file);
        fs::rename(&tmp, &self.path)
    }

    fn open_lock(&self) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&self.lock_path)
    }

    /// Takes the lock if nobody holds it.
    pub fn try_lock(&self) -> io::Result<Option<SlotLock>> {
        let file = self.open_lock()?;
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            Ok(Some(SlotLock(file)))
        } else {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::WouldBlock {
                Ok(None)
            } else {
                Err(err)
            }
        }
    }

    /// Waits for the lock until `deadline`.
    pub fn lock_until(&self, deadline: Instant) -> io::Result<Option<SlotLock>> {
        loop {
            if let Some(lock) = self.try_lock()? {
                return Ok(Some(lock));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ExposeSecret;

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "ssm-shared-test-{}-{}",
            std::process::id(),
            crate::policy::mono_now_ns()
        ));
        prepare_dir(&dir).unwrap();
        dir
    }

    fn entry(password: &str) -> SharedEntry {
        SharedEntry {
            value: Some(StoredValue {
                fetched_ns: 1,
                duration_us: 2,
                value: SecretString::from(format!("postgresql://u:{password}@h/d")),
                version: 3,
                credentials: Some((
                    SecretString::from(format!("{{\"password\":\"{password}\"}}")),
                    4,
                )),
                refresh_after_ns: 5,
                iam_token: Some(IamToken {
                    token: SecretString::from(format!(
                        "h:3306/?Action=connect&X-Amz-Signature={password}"
                    )),
                    signed_ns: 6,
                    region: "eu-west-1".into(),
                }),
            }),
            failures: 0,
            next_attempt_ns: 0,
            last_error: None,
            last_attempt_ns: 1,
            fetched_by_pid: 7,
        }
    }

    #[test]
    fn entry_round_trips_encrypted_with_0600_and_no_plaintext() {
        let dir = temp_dir();
        let key = SharedKey::generate().unwrap();
        let slot = SharedSlot::new(&dir, &key, &["/app/db", "/app/creds"]);
        assert!(slot.read(&key).is_none());
        slot.write(&key, &entry("Canary-Pa55-unit")).unwrap();
        let back = slot.read(&key).unwrap();
        let value = back.value.unwrap();
        assert_eq!(
            value.value.expose_secret(),
            "postgresql://u:Canary-Pa55-unit@h/d"
        );
        assert_eq!(value.credentials.unwrap().1, 4);
        let token = value.iam_token.unwrap();
        assert_eq!(
            (token.token.expose_secret(), token.signed_ns),
            ("h:3306/?Action=connect&X-Amz-Signature=Canary-Pa55-unit", 6)
        );
        let bytes = fs::read(slot.path()).unwrap();
        assert!(
            !bytes.windows(6).any(|w| w == b"Canary"),
            "no plaintext on disk"
        );
        assert!(
            !bytes.windows(9).any(|w| w == b"Signature"),
            "no token on disk"
        );
        assert_eq!(
            fs::metadata(slot.path()).unwrap().permissions().mode() & 0o777,
            0o600
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn another_key_or_slot_cannot_read_the_entry() {
        let dir = temp_dir();
        let key = SharedKey::generate().unwrap();
        let other = SharedKey::generate().unwrap();
        let slot = SharedSlot::new(&dir, &key, &["/a"]);
        slot.write(&key, &entry("x")).unwrap();
        assert!(slot.read(&other).is_none());
        let moved = SharedSlot::new(&dir, &key, &["/b"]);
        fs::copy(slot.path(), moved.path()).unwrap();
        assert!(moved.read(&key).is_none(), "bound to the parameter names");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn lock_is_exclusive_until_dropped() {
        let dir = temp_dir();
        let key = SharedKey::generate().unwrap();
        let slot = SharedSlot::new(&dir, &key, &["/a"]);
        let held = slot.try_lock().unwrap().expect("free");
        assert!(
            slot.try_lock().unwrap().is_none(),
            "flock is per open file, so a second open conflicts"
        );
        drop(held);
        assert!(slot
            .lock_until(Instant::now() + Duration::from_millis(50))
            .unwrap()
            .is_some());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn sweep_removes_files_of_keys_whose_owner_is_gone_and_keeps_the_living() {
        let dir = temp_dir();
        let key = SharedKey::generate().unwrap();
        let ours = SharedSlot::new(&dir, &key, &["/a"]);
        ours.write(&key, &entry("x")).unwrap();
        let me = std::process::id();
        let started = start_time(me).unwrap();
        let files = |id: &str, owner: Option<String>| {
            fs::write(
                dir.join(format!("{id}-00112233445566778899aabb.entry")),
                b"SDC1",
            )
            .unwrap();
            fs::write(dir.join(format!("{id}-00112233445566778899aabb.lock")), b"").unwrap();
            if let Some(owner) = owner {
                fs::write(dir.join(format!("{id}.owner")), owner).unwrap();
            }
        };
        // A master that runs (this process), one whose pid now belongs to a
        // later process (another start time), one with no owner file,
        // changed long ago, and one with none, changed just now.
        files("aaaaaaaaaaaa", Some(format!("{me} {started}\n")));
        files("bbbbbbbbbbbb", Some(format!("{me} {}\n", started + 1)));
        files("cccccccccccc", None);
        let long_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        for suffix in ["entry", "lock"] {
            File::options()
                .write(true)
                .open(dir.join(format!("cccccccccccc-00112233445566778899aabb.{suffix}")))
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
        }
        files("dddddddddddd", None);
        fs::write(dir.join("unrelated.txt"), b"kept").unwrap();

        assert_eq!(claim_and_sweep(&dir, &key), 2 + 1 + 2);
        let mut left: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let id = key.id();
        let mut expected = vec![
            "aaaaaaaaaaaa-00112233445566778899aabb.entry".to_owned(),
            "aaaaaaaaaaaa-00112233445566778899aabb.lock".to_owned(),
            "aaaaaaaaaaaa.owner".to_owned(),
            "dddddddddddd-00112233445566778899aabb.entry".to_owned(),
            "dddddddddddd-00112233445566778899aabb.lock".to_owned(),
            "unrelated.txt".to_owned(),
            format!("{id}.owner"),
            ours.path()
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned(),
        ];
        expected.sort();
        assert_eq!(left, expected);
        assert_eq!(
            fs::read_to_string(dir.join(format!("{id}.owner"))).unwrap(),
            format!("{me} {started}\n"),
            "this process made the key"
        );
        assert!(ours.read(&key).is_some(), "our own entry is kept");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn refuses_a_directory_open_to_others() {
        let dir = temp_dir();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(prepare_dir(&dir).unwrap_err().contains("0700"));
        fs::remove_dir_all(dir).unwrap();
    }
}
