//! The array `ssm_db_config()` returns, built once per value and shared.
//!
//! A warm call must cost less than a few `getenv()` calls, and building a
//! fresh 6-entry PHP array takes longer than that on its own. So each value is
//! turned into one *immutable* array in persistent (malloc) memory, the way
//! opcache stores literal arrays: PHP never reference-counts it, copies it on
//! write, and never frees it. Returning it is two stores into the return zval.
//!
//! The strings in it are flagged interned for the same reason: a copy of the
//! array, or `$host = $cfg['DB_HOST']`, shares them without reference counting.
//! Hence the one rule of this module: a [`FrozenArray`] that may have been
//! handed to PHP is freed only when no request is running (see
//! `state::retire` and the module's post-deactivate hook), because a script
//! may hold pointers into it until its request ends, and so may the constants
//! `ssm_db_config_define()` registers with its strings as their values (PHP
//! destroys them before the post-deactivate hooks run). The constants a
//! worker keeps across requests ([`WorkerConstants`]) hold a reference to
//! their array of their own, and take a new one only between requests.

use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use ext_php_rs::ffi::{self, zend_string, zval, HashTable};
use ssm_db_config_core::iam::IamToken;
use ssm_db_config_core::{DbConfig, Engine, ExposeSecret};
use zeroize::Zeroize;

extern "C" {
    // Exported by PHP, not part of ext-php-rs's generated bindings.
    fn _zend_hash_init(
        ht: *mut HashTable,
        n_size: u32,
        destructor: ffi::dtor_func_t,
        persistent: bool,
    );
    fn zend_hash_destroy(ht: *mut HashTable);
    fn zend_register_constant(c: *mut ZendConstant) -> ffi::zend_result;
    fn zend_hash_discard(ht: *mut HashTable, n_num_used: u32);
}

/// `zend_constant` (Zend/zend_constants.h): the value (its flags and module
/// number in `value.u2`), then the name, as PHP 8.0 to 8.4 lay it out, then
/// zeroed room for what a newer engine appends. ext-php-rs's bindings leave
/// this struct out, so it is mirrored here; the engine copies
/// `sizeof(zend_constant)` bytes from what we pass to `zend_register_constant`
/// and reads its own fields of the ones we allocate.
///
/// The two fields are checked against the headers of PHP 8.2 (API 20220829)
/// and 8.4 (20240924), which the suites run on. PHP 8.5 appends the defining
/// file and the attributes, both pointers whose "none" is NULL: the zeroed
/// room gives a newer engine those values instead of bytes past the end of
/// the struct, so a build against it is not refused. Only the value and name
/// are ever written or read here.
#[repr(C)]
struct ZendConstant {
    value: zval,
    name: *mut zend_string,
    /// NULL for every field a newer engine may add after the name.
    newer_fields: [*mut std::ffi::c_void; 6],
}

impl ZendConstant {
    fn new(value: zval, name: *mut zend_string) -> ZendConstant {
        ZendConstant {
            value,
            name,
            newer_fields: [ptr::null_mut(); 6],
        }
    }
}

/// `PHP_USER_CONSTANT << ZEND_CONSTANT_FLAGS_SHIFT`, no flags (case-sensitive,
/// not persistent): what `define()` registers, freed when the request ends.
const USER_CONSTANT_FLAGS: u32 = 0x7f_ffff << 8;

/// `CONST_PERSISTENT << ZEND_CONSTANT_FLAGS_SHIFT` (Zend/zend_constants.h).
const CONST_PERSISTENT_FLAG: u32 = 1;

// Zend/zend_types.h and zend_hash.h (PHP 8.x).
const IS_PTR: u32 = 13;
const IS_LONG: u32 = 4;
const IS_STRING: u32 = 6;
const IS_ARRAY: u32 = 7;
const GC_NOT_COLLECTABLE: u32 = 1 << 4;
const GC_IMMUTABLE: u32 = 1 << 6;
const GC_PERSISTENT: u32 = 1 << 7;
const HASH_FLAG_STATIC_KEYS: u32 = 1 << 4;
const ZSTR_HEADER: usize = std::mem::offset_of!(zend_string, val);

/// The six keys, interned permanently once (at module startup).
pub struct Keys([*mut zend_string; 6]);

/// The keys of the returned array, in order.
pub const KEY_NAMES: [&str; 6] = [
    "DB_HOST",
    "DB_PORT",
    "DB_USER",
    "DB_PASSWORD",
    "DB_NAME",
    "DB_ENGINE",
];

/// `MYSQL_CLIENT_FLAGS`, interned at module startup (see [`FrozenArray::define_client_flags`]).
static CLIENT_FLAGS_NAME: AtomicPtr<zend_string> = AtomicPtr::new(ptr::null_mut());

/// `MYSQLI_CLIENT_SSL`: WordPress passes `MYSQL_CLIENT_FLAGS` to
/// `mysqli_real_connect()`, and this flag makes it connect over TLS.
pub const MYSQLI_CLIENT_SSL: i64 = 2048;

impl Keys {
    /// Interns the keys. Call during module startup, when interned strings are permanent.
    pub fn intern() -> Keys {
        let init = unsafe { ffi::zend_string_init_interned }
            .expect("zend_string_init_interned is set by the engine");
        let flags = "MYSQL_CLIENT_FLAGS";
        CLIENT_FLAGS_NAME.store(
            unsafe { init(flags.as_ptr().cast(), flags.len(), true) },
            Ordering::Relaxed,
        );
        Keys(KEY_NAMES.map(|k| unsafe { init(k.as_ptr().cast(), k.len(), true) }))
    }
}

/// An immutable persistent PHP array holding one [`DbConfig`].
pub struct FrozenArray {
    ht: *mut HashTable,
    strings: Vec<*mut zend_string>,
    /// A MySQL value with `auth=iam`: the connection must use TLS.
    client_ssl: bool,
}

impl FrozenArray {
    /// Builds the array for `config`; for a value with `auth=iam`,
    /// `DB_PASSWORD` is `token`.
    pub fn build(keys: &Keys, config: &DbConfig, token: Option<&IamToken>) -> FrozenArray {
        let iam = config.iam_sign_host().is_some();
        let password = match token {
            Some(t) if iam => t.token.expose_secret(),
            _ => config.password.expose_secret(),
        };
        let values = [
            Value::Str(config.host_with_port()),
            Value::Long(i64::from(config.port)),
            Value::Str(config.user.clone()),
            Value::Secret(password),
            Value::Str(config.dbname.clone()),
            Value::Str(config.engine.as_str().to_owned()),
        ];
        let mut strings = Vec::with_capacity(5);
        unsafe {
            let ht = libc::malloc(std::mem::size_of::<HashTable>()).cast::<HashTable>();
            assert!(!ht.is_null(), "out of memory");
            _zend_hash_init(ht, 8, None, true);
            for (key, value) in keys.0.iter().zip(values.iter()) {
                let mut zv: zval = std::mem::zeroed();
                match value {
                    Value::Long(n) => {
                        zv.value.lval = *n;
                        zv.u1.type_info = IS_LONG;
                    }
                    Value::Str(s) => put_string(&mut zv, s.as_bytes(), &mut strings),
                    Value::Secret(s) => put_string(&mut zv, s.as_bytes(), &mut strings),
                }
                ffi::zend_hash_update(ht, *key, &mut zv);
            }
            // What opcache does to the arrays it persists.
            (*ht).gc.refcount = 2;
            (*ht).gc.u.type_info = IS_ARRAY | GC_IMMUTABLE | GC_NOT_COLLECTABLE;
            (*ht).u.flags |= HASH_FLAG_STATIC_KEYS;
            FrozenArray {
                ht,
                strings,
                client_ssl: iam && config.engine == Engine::Mysql,
            }
        }
    }

    /// The buckets, in KEY_NAMES order (built so, never deleted from).
    #[inline(always)]
    fn buckets(&self) -> &[ffi::Bucket] {
        unsafe {
            std::slice::from_raw_parts(
                (*self.ht).__bindgen_anon_1.arData,
                (*self.ht).nNumUsed as usize,
            )
        }
    }

    /// Makes `rv` the array, without copying or counting.
    ///
    /// # Safety
    /// `rv` must be a valid return zval, and `self` must outlive the current request.
    #[inline(always)]
    pub unsafe fn return_into(&self, rv: *mut zval) {
        (*rv).value.arr = self.ht;
        (*rv).u1.type_info = IS_ARRAY;
    }

    /// Defines the array's entries as constants (`DB_HOST`, ...), as a loop
    /// of `define()` over it would, or none of them: if one is already
    /// defined, its name is returned and nothing is defined.
    ///
    /// The constants' values are the array's own immutable strings, so the
    /// array must outlive the request, as for [`FrozenArray::return_into`].
    ///
    /// # Safety
    /// Call from the PHP thread during a request.
    pub unsafe fn define_constants(&self) -> Result<(), &'static str> {
        self.none_defined()?;
        for bucket in self.buckets() {
            let mut constant = constant_from(bucket);
            // The values and names are immutable strings: nothing to count.
            zend_register_constant(&mut constant);
        }
        Ok(())
    }

    /// For a MySQL value with `auth=iam`: defines `MYSQL_CLIENT_FLAGS` as
    /// `MYSQLI_CLIENT_SSL` unless it is already defined (wp-config.php may
    /// set flags of its own, which are then kept), so that WordPress sends
    /// the token over TLS. A constant of the request, like `define()`'s.
    ///
    /// # Safety
    /// Call from the PHP thread during a request.
    pub unsafe fn define_client_flags(&self) {
        let name = CLIENT_FLAGS_NAME.load(Ordering::Relaxed);
        if !self.client_ssl || name.is_null() {
            return;
        }
        let constants = ffi::executor_globals.zend_constants;
        if !ffi::zend_hash_find(constants, name).is_null() {
            return;
        }
        let mut constant = ZendConstant::new(std::mem::zeroed(), name);
        constant.value.value.lval = MYSQLI_CLIENT_SSL;
        constant.value.u1.type_info = IS_LONG;
        constant.value.u2.constant_flags = USER_CONSTANT_FLAGS;
        zend_register_constant(&mut constant);
    }

    /// For a MySQL value with `auth=iam`: whether `MYSQL_CLIENT_FLAGS` is
    /// already defined (by wp-config.php) as anything but an integer with
    /// `MYSQLI_CLIENT_SSL` in it, which would make WordPress connect, and
    /// send the token, without TLS.
    ///
    /// # Safety
    /// Call from the PHP thread during a request.
    pub unsafe fn client_flags_lack_ssl(&self) -> bool {
        let name = CLIENT_FLAGS_NAME.load(Ordering::Relaxed);
        if !self.client_ssl || name.is_null() {
            return false;
        }
        let found = ffi::zend_hash_find(ffi::executor_globals.zend_constants, name);
        if found.is_null() {
            return false;
        }
        // EG(zend_constants) holds IS_PTR zvals to zend_constant, whose
        // first member is the constant's value.
        let value = (*found).value.ptr as *const zval;
        match value.as_ref() {
            Some(v) if v.u1.type_info == IS_LONG => v.value.lval & MYSQLI_CLIENT_SSL == 0,
            _ => true,
        }
    }

    /// The all-or-none check: the name of the first of the six constants
    /// that is already defined, if one is.
    unsafe fn none_defined(&self) -> Result<(), &'static str> {
        // EG(zend_constants), read directly: ExecutorGlobals::get() takes a
        // lock, and this runs once per request (non-thread-safe PHP only).
        let constants = ffi::executor_globals.zend_constants;
        match self
            .buckets()
            .iter()
            .position(|b| !ffi::zend_hash_find(constants, b.key).is_null())
        {
            Some(i) => Err(KEY_NAMES[i]),
            None => Ok(()),
        }
    }
}

/// A user constant named and valued as an entry of the array.
unsafe fn constant_from(bucket: &ffi::Bucket) -> ZendConstant {
    let mut constant = ZendConstant::new(ptr::read(&bucket.val), bucket.key);
    // u2 of an array element is its hash chain; of a constant, its flags.
    constant.value.u2.constant_flags = USER_CONSTANT_FLAGS;
    constant
}

/// The six constants kept across a worker's requests
/// (`ssm_db_config.define_constants` in a php-fpm or Apache worker): defined
/// once, their values replaced in place when the value changes, so that a
/// request defines nothing and destroys nothing.
///
/// How they outlive a request: PHP destroys at the end of each request every
/// constant past `EG(persistent_constants_count)`, the size of the table when
/// the request started. These are added at request start, before any script
/// runs, and the count is moved past them, so that PHP keeps them as it
/// keeps the constants of extensions (the next request's start sets the
/// count to the table's size again, them included). They are not flagged
/// `CONST_PERSISTENT`, which would let the compiler and opcache copy their
/// values into compiled scripts, where a new value (a failover's host, a
/// rotated password) would never reach.
/// Their memory is malloc's, so whoever frees them sets that flag first: the
/// engine's destructor then frees them with `free()` (see [`Self::remove`]).
pub struct WorkerConstants {
    entries: [*mut ZendConstant; 6],
    /// The position of the first of them in `EG(zend_constants)`.
    first_index: u32,
    /// The array whose strings the values are, kept alive while they are.
    array: std::rc::Rc<FrozenArray>,
}

impl WorkerConstants {
    /// Defines the constants for the worker's life, with `array`'s values.
    /// `Ok(None)` when they cannot be kept past the request (the table has
    /// grown since the request started: another extension defined constants
    /// for this request before us); `Err(name)` when one is already defined.
    ///
    /// # Safety
    /// Call from the PHP thread at request start (RINIT), before any script.
    pub unsafe fn install(
        array: std::rc::Rc<FrozenArray>,
    ) -> Result<Option<WorkerConstants>, &'static str> {
        array.none_defined()?;
        let constants = ffi::executor_globals.zend_constants;
        let first_index = (*constants).nNumUsed;
        if first_index != ffi::executor_globals.persistent_constants_count {
            return Ok(None);
        }
        let mut entries = [ptr::null_mut(); 6];
        for (entry, bucket) in entries.iter_mut().zip(array.buckets()) {
            let c = libc::malloc(std::mem::size_of::<ZendConstant>()).cast::<ZendConstant>();
            assert!(!c.is_null(), "out of memory");
            c.write(constant_from(bucket));
            let mut zv: zval = std::mem::zeroed();
            zv.value.ptr = c.cast();
            zv.u1.type_info = IS_PTR;
            // Cannot fail: none of the names is in the table (checked above).
            ffi::zend_hash_add(constants, bucket.key, &mut zv);
            *entry = c;
        }
        ffi::executor_globals.persistent_constants_count = (*constants).nNumUsed;
        Ok(Some(WorkerConstants {
            entries,
            first_index,
            array,
        }))
    }

    /// Whether the values are `array`'s.
    #[inline(always)]
    pub fn holds(&self, array: &FrozenArray) -> bool {
        ptr::eq(&*self.array, array)
    }

    /// Gives the constants `array`'s values, in place.
    ///
    /// # Safety
    /// Call from the PHP thread between scripts (request start), so that no
    /// script sees a constant change.
    pub unsafe fn repoint(&mut self, array: std::rc::Rc<FrozenArray>) {
        for (&c, bucket) in self.entries.iter().zip(array.buckets()) {
            (*c).value = constant_from(bucket).value;
        }
        self.array = array;
    }

    /// Undefines the constants (the value may no longer be served).
    ///
    /// # Safety
    /// As for [`Self::repoint`].
    pub unsafe fn remove(self) {
        let constants = ffi::executor_globals.zend_constants;
        for &c in &self.entries {
            // So that the table's destructor frees it with free(); the value
            // and the name are immutable strings it leaves alone.
            (*c).value.u2.constant_flags |= CONST_PERSISTENT_FLAG;
        }
        let end = self.first_index + self.entries.len() as u32;
        if (*constants).nNumUsed == end && ffi::executor_globals.persistent_constants_count == end {
            // The last entries of the table: cut it back, leaving no hole
            // below the request's part (a later resize could move entries
            // of a request across the count if it compacted holes).
            zend_hash_discard(constants, self.first_index);
            ffi::executor_globals.persistent_constants_count = self.first_index;
            for &c in &self.entries {
                libc::free(c.cast());
            }
        } else {
            for &c in &self.entries {
                ffi::zend_hash_del(constants, (*c).name);
            }
        }
    }

    /// At module shutdown: lets the engine free them with the table.
    ///
    /// # Safety
    /// Call from module shutdown.
    pub unsafe fn release_at_shutdown(self) {
        for &c in &self.entries {
            (*c).value.u2.constant_flags |= CONST_PERSISTENT_FLAG;
        }
    }
}

enum Value<'a> {
    Str(String),
    Secret(&'a str),
    Long(i64),
}

unsafe fn put_string(zv: &mut zval, bytes: &[u8], owned: &mut Vec<*mut zend_string>) {
    let size = (ZSTR_HEADER + bytes.len() + 1 + 7) & !7;
    let s = libc::malloc(size).cast::<zend_string>();
    assert!(!s.is_null(), "out of memory");
    (*s).gc.refcount = 1;
    (*s).gc.u.type_info = IS_STRING | GC_NOT_COLLECTABLE | GC_IMMUTABLE | GC_PERSISTENT;
    (*s).h = 0;
    (*s).len = bytes.len();
    let val = s.cast::<u8>().add(ZSTR_HEADER);
    ptr::copy_nonoverlapping(bytes.as_ptr(), val, bytes.len());
    *val.add(bytes.len()) = 0;
    zv.value.str_ = s;
    // An interned string's zval is not reference counted (IS_INTERNED_STRING_EX).
    zv.u1.type_info = IS_STRING;
    owned.push(s);
}

impl Drop for FrozenArray {
    fn drop(&mut self) {
        unsafe {
            // Back to a plain persistent array so that zend_hash_destroy frees
            // its bucket storage with free(); the elements have no destructor.
            (*self.ht).gc.u.type_info = IS_ARRAY | GC_PERSISTENT;
            zend_hash_destroy(self.ht);
            libc::free(self.ht.cast());
            for &s in &self.strings {
                let val = std::slice::from_raw_parts_mut(s.cast::<u8>().add(ZSTR_HEADER), (*s).len);
                val.zeroize();
                libc::free(s.cast());
            }
        }
    }
}
