//! `core_rs.sqlite_writer.SqliteWriter`: many rows into a SQLite database in
//! one transaction, with the GIL released for the whole of it.
//!
//! Python's sqlite3 module binds every row's parameters holding the GIL and
//! takes the GIL back after every row's step: a bulk insert in a worker
//! thread waits on the event loop for the GIL once per row, and the loop
//! waits on the insert. Here the rows' values are borrowed once, then
//! SQLite runs alone.
//!
//! The SQLite used is the one Python's `_sqlite3` module is linked to,
//! looked up in the running process (`dlopen` with `RTLD_NOLOAD` of that
//! module, `dlsym` through its dependencies). Never a second copy of the
//! library: two copies in one process do not see each other's POSIX locks
//! and can corrupt a database both open. When the module carries SQLite
//! inside it, unexported, there is nothing to find and the constructor
//! raises OSError: the caller keeps using sqlite3.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::Mutex;

use pyo3::exceptions::{PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyList, PyString, PyTuple};

use super::insert_rows::{Field, InsertRows, FIELDS};

const SQLITE_OK: c_int = 0;
const SQLITE_TOOBIG: c_int = 18;
const SQLITE_ROW: c_int = 100;
const SQLITE_DONE: c_int = 101;
const SQLITE_OPEN_READWRITE: c_int = 0x2;
// The connection is used by one thread at a time (the Mutex below).
const SQLITE_OPEN_NOMUTEX: c_int = 0x8000;

type Db = c_void;
type Stmt = c_void;
type Destructor = Option<unsafe extern "C" fn(*mut c_void)>;

/// The few SQLite entry points used, from the process's own library.
struct Api {
    open_v2: unsafe extern "C" fn(*const c_char, *mut *mut Db, c_int, *const c_char) -> c_int,
    close_v2: unsafe extern "C" fn(*mut Db) -> c_int,
    exec: unsafe extern "C" fn(
        *mut Db,
        *const c_char,
        *const c_void,
        *mut c_void,
        *mut *mut c_char,
    ) -> c_int,
    prepare_v2: unsafe extern "C" fn(
        *mut Db,
        *const c_char,
        c_int,
        *mut *mut Stmt,
        *mut *const c_char,
    ) -> c_int,
    bind_text: unsafe extern "C" fn(*mut Stmt, c_int, *const c_char, c_int, Destructor) -> c_int,
    bind_int64: unsafe extern "C" fn(*mut Stmt, c_int, i64) -> c_int,
    bind_null: unsafe extern "C" fn(*mut Stmt, c_int) -> c_int,
    step: unsafe extern "C" fn(*mut Stmt) -> c_int,
    reset: unsafe extern "C" fn(*mut Stmt) -> c_int,
    finalize: unsafe extern "C" fn(*mut Stmt) -> c_int,
    changes: unsafe extern "C" fn(*mut Db) -> c_int,
    errmsg: unsafe extern "C" fn(*mut Db) -> *const c_char,
    extended_errcode: unsafe extern "C" fn(*mut Db) -> c_int,
}

#[cfg(target_os = "linux")]
mod dl {
    use std::ffi::{c_char, c_int, c_void};

    pub const RTLD_NOW: c_int = 2;
    pub const RTLD_NOLOAD: c_int = 4;

    extern "C" {
        pub fn dlopen(filename: *const c_char, flags: c_int) -> *mut c_void;
        pub fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    }
}

/// A function pointer of type `F` at `address`.
///
/// # Safety
/// `address` is a function whose signature `F` (a `fn` pointer type) spells out.
#[cfg(target_os = "linux")]
unsafe fn function<F: Copy>(address: *mut c_void) -> F {
    assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<*mut c_void>());
    // SAFETY: the caller's promise; the sizes are equal (checked above).
    unsafe { std::mem::transmute_copy::<*mut c_void, F>(&address) }
}

impl Api {
    /// The SQLite functions `module` (a loaded shared object) reaches.
    #[cfg(target_os = "linux")]
    fn of_loaded(module: &str) -> Result<Api, String> {
        let path = CString::new(module).map_err(|e| e.to_string())?;
        // SAFETY: NOLOAD only returns a handle to an object already loaded
        // (nothing runs); dlsym returns a symbol's address or null.
        let handle = unsafe { dl::dlopen(path.as_ptr(), dl::RTLD_NOW | dl::RTLD_NOLOAD) };
        if handle.is_null() {
            return Err(format!("{module} is not loaded in this process"));
        }
        let find = |name: &str| -> Result<*mut c_void, String> {
            let symbol = CString::new(name).map_err(|e| e.to_string())?;
            // SAFETY: as above.
            let found = unsafe { dl::dlsym(handle, symbol.as_ptr()) };
            if found.is_null() {
                Err(format!(
                    "{name} is not exported by {module} or its libraries"
                ))
            } else {
                Ok(found)
            }
        };
        // SAFETY: each symbol is the SQLite C API function of that name, whose
        // signature the field's type spells out (sqlite3.h).
        unsafe {
            Ok(Api {
                open_v2: function(find("sqlite3_open_v2")?),
                close_v2: function(find("sqlite3_close_v2")?),
                exec: function(find("sqlite3_exec")?),
                prepare_v2: function(find("sqlite3_prepare_v2")?),
                bind_text: function(find("sqlite3_bind_text")?),
                bind_int64: function(find("sqlite3_bind_int64")?),
                bind_null: function(find("sqlite3_bind_null")?),
                step: function(find("sqlite3_step")?),
                reset: function(find("sqlite3_reset")?),
                finalize: function(find("sqlite3_finalize")?),
                changes: function(find("sqlite3_changes")?),
                errmsg: function(find("sqlite3_errmsg")?),
                extended_errcode: function(find("sqlite3_extended_errcode")?),
            })
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn of_loaded(_module: &str) -> Result<Api, String> {
        Err("the native SQLite writer is built for Linux only".to_owned())
    }
}

/// A value to bind: borrowed from the Python objects of the call.
enum Value<'a> {
    Text(&'a str),
    Int(i64),
    Null,
}

/// How a batch ended: SQLite's extended result code and message.
struct Failure {
    code: c_int,
    message: String,
}

struct Connection {
    api: Api,
    db: *mut Db,
}

// SAFETY: the handle is only used under the writer's Mutex, one thread at a
// time, which SQLITE_OPEN_NOMUTEX requires.
unsafe impl Send for Connection {}

impl Connection {
    fn failure(&self, code: c_int) -> Failure {
        // SAFETY: db is open; errmsg's text is valid until the next call on it.
        let message = unsafe { CStr::from_ptr((self.api.errmsg)(self.db)) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: as above.
        let extended = unsafe { (self.api.extended_errcode)(self.db) };
        Failure {
            code: if extended != 0 { extended } else { code },
            message,
        }
    }

    fn exec(&self, sql: &str) -> Result<(), Failure> {
        let sql = CString::new(sql).map_err(|e| Failure {
            code: 1,
            message: e.to_string(),
        })?;
        let null = std::ptr::null_mut();
        // SAFETY: db is open, sql NUL-terminated; no callback, no error text.
        let rc =
            unsafe { (self.api.exec)(self.db, sql.as_ptr(), std::ptr::null(), null, null.cast()) };
        if rc == SQLITE_OK {
            Ok(())
        } else {
            Err(self.failure(rc))
        }
    }

    fn prepare(&self, sql: &str) -> Result<Statement<'_>, Failure> {
        let mut stmt = std::ptr::null_mut();
        let len = c_int::try_from(sql.len()).map_err(|e| Failure {
            code: 1,
            message: e.to_string(),
        })?;
        // SAFETY: db is open; the length bounds the text, no NUL needed.
        let rc = unsafe {
            (self.api.prepare_v2)(
                self.db,
                sql.as_ptr().cast(),
                len,
                &mut stmt,
                std::ptr::null_mut(),
            )
        };
        if rc != SQLITE_OK || stmt.is_null() {
            return Err(self.failure(rc));
        }
        Ok(Statement { conn: self, stmt })
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // SAFETY: db was opened by open_v2 and is closed once; close_v2
        // defers the close if a statement were still open (none is).
        unsafe { (self.api.close_v2)(self.db) };
    }
}

struct Statement<'c> {
    conn: &'c Connection,
    stmt: *mut Stmt,
}

impl Statement<'_> {
    /// Binds `values` and steps once; the number of rows it changed.
    fn run(&self, values: &[Value<'_>]) -> Result<c_int, Failure> {
        let api = &self.conn.api;
        for (i, value) in values.iter().enumerate() {
            let too_big = |_| Failure {
                code: SQLITE_TOOBIG,
                message: "a value or a row too big to bind".to_owned(),
            };
            let at = c_int::try_from(i + 1).map_err(too_big)?;
            // SAFETY: stmt is prepared; a text is bound SQLITE_STATIC (no
            // destructor): the &str outlives the step, and reset comes first.
            let rc = unsafe {
                match value {
                    Value::Text(text) => (api.bind_text)(
                        self.stmt,
                        at,
                        text.as_ptr().cast(),
                        c_int::try_from(text.len()).map_err(too_big)?,
                        None,
                    ),
                    Value::Int(n) => (api.bind_int64)(self.stmt, at, *n),
                    Value::Null => (api.bind_null)(self.stmt, at),
                }
            };
            if rc != SQLITE_OK {
                return Err(self.conn.failure(rc));
            }
        }
        // SAFETY: stmt is prepared and bound.
        let rc = unsafe { (api.step)(self.stmt) };
        // SAFETY: as above; reset keeps the statement for the next row.
        unsafe { (api.reset)(self.stmt) };
        match rc {
            // SAFETY: db is open.
            SQLITE_DONE | SQLITE_ROW => Ok(unsafe { (api.changes)(self.conn.db) }),
            _ => Err(self.conn.failure(rc)),
        }
    }
}

impl Drop for Statement<'_> {
    fn drop(&mut self) {
        // SAFETY: stmt was prepared on this connection and is finalized once.
        unsafe { (self.conn.api.finalize)(self.stmt) };
    }
}

/// One connection to a SQLite database file for batch inserts.
#[pyclass(module = "core_rs._core")]
pub struct SqliteWriter {
    conn: Mutex<Option<Connection>>,
}

#[pymethods]
impl SqliteWriter {
    /// Opens ``database`` (an existing file) through the SQLite library of
    /// ``sqlite_module`` (``_sqlite3.__file__``) and runs ``pragmas``.
    /// OSError when that library cannot be found in this process or the
    /// file cannot be opened.
    #[new]
    fn new(
        py: Python<'_>,
        sqlite_module: &str,
        database: &str,
        pragmas: Vec<String>,
    ) -> PyResult<Self> {
        let api = Api::of_loaded(sqlite_module).map_err(PyOSError::new_err)?;
        let path = CString::new(database).map_err(|e| PyValueError::new_err(e.to_string()))?;
        // Opening may wait on the busy timeout for another connection's lock.
        let conn = py.detach(|| open(api, &path, database, &pragmas));
        Ok(SqliteWriter {
            conn: Mutex::new(Some(conn.map_err(PyOSError::new_err)?)),
        })
    }

    /// One write transaction (BEGIN IMMEDIATE): ``first`` with ``first_values``,
    /// which must change exactly one row, then ``insert`` once per row of
    /// ``rows`` (tuples of str, int or None, or an ``InsertRows``), then
    /// COMMIT; the GIL is released meanwhile. Returns ``(0, "")`` when
    /// committed, ``(-1, "")`` when ``first`` changed no row, or SQLite's
    /// ``(extended code, message)`` when a statement failed; nothing is
    /// written unless committed.
    fn write(
        &self,
        py: Python<'_>,
        first: &str,
        first_values: &Bound<'_, PyTuple>,
        insert: &str,
        rows: &Bound<'_, PyAny>,
    ) -> PyResult<(i32, String)> {
        let first_values: Vec<Bound<'_, PyAny>> = first_values.iter().collect();
        let first_values = values(&first_values)?;
        // The lock is taken with the GIL released: a thread holding the GIL
        // while it waits for a write that needs the GIL back to return would
        // deadlock with it.
        let outcome = if let Ok(native) = rows.cast::<InsertRows>() {
            // Frozen: borrowed without the GIL, no Python object per value.
            let native: Py<InsertRows> = native.clone().unbind();
            py.detach(|| {
                let native = native.get();
                let rows: Vec<[Value<'_>; FIELDS]> = native
                    .rows
                    .iter()
                    .map(|r| native.values(r).map(Value::from))
                    .collect();
                self.transaction(first, &first_values, insert, &rows)
            })
        } else {
            let tuples: Vec<Bound<'_, PyTuple>> = rows
                .cast::<PyList>()?
                .iter()
                .map(|row| row.cast_into::<PyTuple>().map_err(PyErr::from))
                .collect::<PyResult<_>>()?;
            let items: Vec<Vec<Bound<'_, PyAny>>> =
                tuples.iter().map(|t| t.iter().collect()).collect();
            let rows = items
                .iter()
                .map(|row| values(row))
                .collect::<PyResult<Vec<_>>>()?;
            py.detach(|| self.transaction(first, &first_values, insert, &rows))
        };
        let outcome = outcome.map_err(Closed::error)?;
        Ok(match outcome {
            Ok(true) => (0, String::new()),
            Ok(false) => (-1, String::new()),
            Err(failure) => (failure.code, failure.message),
        })
    }

    /// Closes the connection; later writes raise OSError.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| {
            let mut guard = self.conn.lock().map_err(|_| Closed::Poisoned)?;
            guard.take(); // close_v2, outside the GIL like every use of it

            Ok::<(), Closed>(())
        })
        .map_err(Closed::error)?;
        Ok(())
    }
}

impl SqliteWriter {
    /// `transaction` on the connection, once the lock is free.
    fn transaction<'v, R: AsRef<[Value<'v>]>>(
        &self,
        first: &str,
        first_values: &[Value<'v>],
        insert: &str,
        rows: &[R],
    ) -> Result<Result<bool, Failure>, Closed> {
        let guard = self.conn.lock().map_err(|_| Closed::Poisoned)?;
        let conn = guard.as_ref().ok_or(Closed::Closed)?;
        Ok(transaction(conn, first, first_values, insert, rows))
    }
}

impl<'a> From<Field<'a>> for Value<'a> {
    fn from(field: Field<'a>) -> Self {
        match field {
            Field::Text(text) => Value::Text(text),
            Field::Int(n) => Value::Int(n),
        }
    }
}

/// A connection to `database` (`path`) with `pragmas` run.
fn open(api: Api, path: &CStr, database: &str, pragmas: &[String]) -> Result<Connection, String> {
    let mut db = std::ptr::null_mut();
    // SAFETY: path is NUL-terminated; open_v2 writes a handle (also on
    // failure, when it must still be closed: the Connection does that).
    let rc = unsafe {
        (api.open_v2)(
            path.as_ptr(),
            &mut db,
            SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
            std::ptr::null(),
        )
    };
    if db.is_null() {
        return Err(format!("cannot open {database}: out of memory"));
    }
    let conn = Connection { api, db };
    if rc != SQLITE_OK {
        let failure = conn.failure(rc);
        return Err(format!("cannot open {database}: {}", failure.message));
    }
    for pragma in pragmas {
        conn.exec(pragma)
            .map_err(|f| format!("{database}: {pragma}: {}", f.message))?;
    }
    Ok(conn)
}

/// Why a writer could not be used.
enum Closed {
    Closed,
    /// A thread panicked holding the connection.
    Poisoned,
}

impl Closed {
    fn error(self) -> PyErr {
        PyOSError::new_err(match self {
            Closed::Closed => "the writer is closed",
            Closed::Poisoned => "the writer is unusable: a write panicked",
        })
    }
}

fn values<'a>(items: &'a [Bound<'_, PyAny>]) -> PyResult<Vec<Value<'a>>> {
    items
        .iter()
        .map(|item| {
            if item.is_none() {
                Ok(Value::Null)
            } else if let Ok(text) = item.cast::<PyString>() {
                Ok(Value::Text(text.to_str()?))
            } else if item.is_instance_of::<PyInt>() {
                Ok(Value::Int(item.extract()?))
            } else {
                Err(PyTypeError::new_err(format!(
                    "a value to write must be str, int or None, not {}",
                    item.get_type().name()?
                )))
            }
        })
        .collect()
}

/// Ok(true) committed, Ok(false) rolled back because `first` changed no row.
fn transaction<'v, R: AsRef<[Value<'v>]>>(
    conn: &Connection,
    first: &str,
    first_values: &[Value<'v>],
    insert: &str,
    rows: &[R],
) -> Result<bool, Failure> {
    conn.exec("BEGIN IMMEDIATE")?;
    let body = || -> Result<bool, Failure> {
        if conn.prepare(first)?.run(first_values)? != 1 {
            return Ok(false);
        }
        let statement = conn.prepare(insert)?;
        for row in rows {
            statement.run(row.as_ref())?;
        }
        drop(statement);
        conn.exec("COMMIT")?;
        Ok(true)
    };
    let outcome = body();
    if !matches!(outcome, Ok(true)) {
        // Nothing of the batch stays; a failed COMMIT leaves the
        // transaction open too. The outcome says what went wrong.
        let _ = conn.exec("ROLLBACK");
    }
    outcome
}
