// SPDX-License-Identifier: MIT
//! Keeps the hand-written declarations in src/lib.rs in sync with the C
//! headers the library was found with (build.rs passes their directories):
//!
//! - `functions_match_headers`: every `NETELECT_API` prototype of
//!   netelect.h and netelect/view.h, reduced to canonical types, against
//!   every `pub fn` of the extern block, both ways (a missing, extra or
//!   differently typed function fails).
//! - `layout_matches_c`: a C probe, generated from the Rust field lists,
//!   compiled with `cc` against the headers and run, prints sizeof, alignof
//!   and each field's offset and size, plus every constant; each must equal
//!   the Rust value (a C field renamed makes the probe fail to compile, an
//!   added or moved one changes a size or an offset).
use std::collections::{BTreeMap, BTreeSet};
use std::mem::{align_of, size_of, MaybeUninit};
use std::path::PathBuf;
use std::process::Command;

use netelect_sys::*;

fn include_dirs() -> Vec<PathBuf> {
    env!("NETELECT_SYS_INCLUDE").split(':').filter(|s| !s.is_empty()).map(PathBuf::from).collect()
}

fn find_header(rel: &str) -> PathBuf {
    for d in include_dirs() {
        let p = d.join(rel);
        if p.exists() {
            return p;
        }
    }
    panic!("{rel} not found under {:?}", include_dirs());
}

fn strip_c_comments(s: &str) -> String {
    let mut out = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"/*") {
            i += 2 + s[i + 2..].find("*/").expect("unterminated comment") + 2;
            out.push(' ');
        } else if b[i..].starts_with(b"//") {
            i += s[i..].find('\n').unwrap_or(s.len() - i);
        } else if b[i] == b'#' && (i == 0 || b[i - 1] == b'\n') {
            // Preprocessor lines (with continuations) hold no prototypes.
            while i < b.len() && !(b[i] == b'\n' && b[i - 1] != b'\\') {
                i += 1;
            }
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// Splits at commas outside parentheses.
fn split_top(s: &str) -> Vec<String> {
    let (mut depth, mut cur, mut out) = (0, String::new(), Vec::new());
    for c in s.chars() {
        match c {
            '(' | '<' => depth += 1,
            ')' | '>' => depth -= 1,
            ',' if depth == 0 => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

fn c_tokens(s: &str) -> Vec<String> {
    s.replace('*', " * ").split_whitespace().map(str::to_string).collect()
}

/// A C base type (no pointer) in the canonical spelling.
fn c_base(toks: &[String]) -> String {
    let t: Vec<&str> =
        toks.iter().map(String::as_str).filter(|t| *t != "const" && *t != "struct" && *t != "enum").collect();
    match t.join(" ").as_str() {
        "uint64_t" => "u64".into(),
        "uint32_t" | "unsigned" | "unsigned int" => "u32".into(),
        "uint16_t" => "u16".into(),
        "uint8_t" => "u8".into(),
        "int32_t" | "int" => "i32".into(),
        "size_t" => "usize".into(),
        "char" => "i8".into(),
        "void" => "c_void".into(),
        "netelect_outcome" => "u32".into(),
        other => other.to_string(),
    }
}

/// A C type (tokens, no name) in the canonical spelling.
fn c_type(toks: &[String], typedefs: &BTreeMap<String, String>) -> String {
    let stars = toks.iter().filter(|t| *t == "*").count();
    let base_toks: Vec<String> = toks.iter().filter(|t| *t != "*").cloned().collect();
    let mut ty = c_base(&base_toks);
    if let Some(td) = typedefs.get(&ty) {
        ty = td.clone();
    }
    if stars == 0 {
        return ty;
    }
    // Only the first level can be const in these headers ("const T *").
    let first_const = toks.first().map(|t| t == "const").unwrap_or(false);
    for level in 0..stars {
        let q = if level == 0 && first_const { "*const " } else { "*mut " };
        ty = format!("{q}{ty}");
    }
    ty
}

/// A parameter ("const uint64_t *ids", "int (*cb)(void *ctx, ...)") to its
/// canonical type, or a whole function pointer to "fn(A,B)->R".
fn c_param(p: &str, typedefs: &BTreeMap<String, String>) -> String {
    if let Some(star) = p.find("(*") {
        let ret = c_type(&c_tokens(&p[..star]), typedefs);
        let rest = &p[star..];
        let args_at = rest[1..].find('(').expect("fn pointer args") + 1;
        let args = &rest[args_at + 1..rest.rfind(')').unwrap()];
        return c_fn(&ret, args, typedefs);
    }
    let mut toks = c_tokens(p);
    if toks.len() > 1 && toks.last().map(|t| t != "*").unwrap_or(false) {
        toks.pop(); // the parameter's name
    }
    c_type(&toks, typedefs)
}

fn c_fn(ret: &str, args: &str, typedefs: &BTreeMap<String, String>) -> String {
    let params: Vec<String> = if args.trim() == "void" {
        vec![]
    } else {
        split_top(args).iter().map(|a| c_param(a, typedefs)).collect()
    };
    let ret = if ret == "c_void" { "()" } else { ret };
    format!("fn({})->{}", params.join(","), ret)
}

fn header_functions() -> BTreeMap<String, String> {
    let mut text = String::new();
    for h in ["netelect.h", "netelect/view.h"] {
        text += &strip_c_comments(&std::fs::read_to_string(find_header(h)).unwrap());
    }
    let mut typedefs = BTreeMap::new();
    for stmt in text.split(';') {
        let stmt = stmt.trim();
        if let Some(rest) = stmt.strip_prefix("typedef") {
            if let Some(star) = rest.find("(*") {
                let name_end = rest[star..].find(')').unwrap() + star;
                let name = rest[star + 2..name_end].trim().to_string();
                let ret = c_type(&c_tokens(&rest[..star]), &typedefs);
                let args = &rest[name_end + 1..];
                let args = &args[args.find('(').unwrap() + 1..args.rfind(')').unwrap()];
                let f = c_fn(&ret, args, &typedefs);
                typedefs.insert(name, f);
            }
        }
    }
    let mut fns = BTreeMap::new();
    for stmt in text.split(';') {
        let at = match stmt.find("NETELECT_API") {
            Some(at) => at,
            None => continue,
        };
        let decl = stmt[at + "NETELECT_API".len()..].trim();
        if decl.is_empty() || decl.starts_with("__attribute__") {
            continue; // the macro's own definition
        }
        let open = decl.find('(').unwrap();
        let head = c_tokens(&decl[..open]);
        let name = head.last().unwrap().clone();
        let ret = c_type(&head[..head.len() - 1], &typedefs);
        let args = &decl[open + 1..decl.rfind(')').unwrap()];
        fns.insert(name, c_fn(&ret, args, &typedefs));
    }
    fns
}

/// A Rust type from src/lib.rs in the canonical spelling.
fn rust_type(t: &str, aliases: &BTreeMap<String, String>) -> String {
    let t = t.trim().trim_end_matches(',').trim();
    if let Some(inner) = t.strip_prefix("Option<").and_then(|s| s.strip_suffix('>')) {
        return rust_type(inner, aliases);
    }
    if let Some(rest) = t.strip_prefix("unsafe extern \"C\" fn") {
        let rest = rest.trim();
        let close = rest.rfind(')').unwrap();
        let params: Vec<String> = split_top(&rest[1..close])
            .iter()
            .map(|p| rust_type(p.split_once(':').map(|x| x.1).unwrap_or(p), aliases))
            .collect();
        let ret = rest[close + 1..].trim().strip_prefix("->").map(|r| rust_type(r, aliases));
        return format!("fn({})->{}", params.join(","), ret.unwrap_or_else(|| "()".into()));
    }
    for q in ["*const ", "*mut "] {
        if let Some(inner) = t.strip_prefix(q) {
            return format!("{q}{}", rust_type(inner, aliases));
        }
    }
    match t {
        "size_t" => "usize".into(),
        "c_int" => "i32".into(),
        "c_uint" => "u32".into(),
        "c_char" => "i8".into(),
        other => aliases.get(other).map(|a| rust_type(a, aliases)).unwrap_or_else(|| other.to_string()),
    }
}

fn rust_functions() -> BTreeMap<String, String> {
    let src = include_str!("../src/lib.rs");
    let mut aliases = BTreeMap::new();
    for stmt in src.split(';') {
        if let Some(at) = stmt.find("pub type ") {
            let (name, ty) = stmt[at + 9..].split_once('=').unwrap();
            aliases.insert(name.trim().to_string(), ty.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
    let block = &src[src.find("extern \"C\" {").expect("extern block")..];
    let mut fns = BTreeMap::new();
    for stmt in block.split(';') {
        let at = match stmt.find("pub fn ") {
            Some(at) => at,
            None => continue,
        };
        let decl = stmt[at + 7..].split_whitespace().collect::<Vec<_>>().join(" ");
        let open = decl.find('(').unwrap();
        let name = decl[..open].trim().to_string();
        let close = decl.rfind(')').unwrap();
        let params: Vec<String> = split_top(&decl[open + 1..close])
            .iter()
            .map(|p| rust_type(p.split_once(':').unwrap().1, &aliases))
            .collect();
        let ret = decl[close + 1..].trim().strip_prefix("->").map(|r| rust_type(r, &aliases));
        fns.insert(name, format!("fn({})->{}", params.join(","), ret.unwrap_or_else(|| "()".into())));
    }
    fns
}

#[test]
fn functions_match_headers() {
    let c = header_functions();
    let r = rust_functions();
    assert!(c.len() >= 30, "parsed only {} prototypes from the headers: {c:#?}", c.len());
    let mut diffs = Vec::new();
    for name in c.keys().chain(r.keys()).collect::<BTreeSet<_>>() {
        match (c.get(name), r.get(name)) {
            (Some(a), Some(b)) if a == b => {}
            (a, b) => diffs.push(format!("{name}:\n   header: {a:?}\n   rust:   {b:?}")),
        }
    }
    assert!(diffs.is_empty(), "src/lib.rs differs from the headers:\n{}", diffs.join("\n"));
}

fn sz<T>(_: *const T) -> usize {
    size_of::<T>()
}

/// (C expression, Rust value) pairs for every size, alignment, offset and
/// constant: the probe prints the C side of each.
fn layout_rows() -> Vec<(String, i128)> {
    let mut rows: Vec<(String, i128)> = Vec::new();
    macro_rules! strukt {
        ($t:ident { $($f:ident),* $(,)? }) => {{
            let c = concat!("struct ", stringify!($t));
            rows.push((format!("sizeof({c})"), size_of::<$t>() as i128));
            rows.push((format!("_Alignof({c})"), align_of::<$t>() as i128));
            let u = MaybeUninit::<$t>::uninit();
            let base = u.as_ptr();
            $(
                // SAFETY: addr_of! on a field of an uninitialised value reads nothing.
                let fp = unsafe { std::ptr::addr_of!((*base).$f) };
                rows.push((format!("offsetof({c}, {})", stringify!($f)),
                           (fp as usize - base as usize) as i128));
                rows.push((format!("sizeof((({c} *)0)->{})", stringify!($f)), sz(fp) as i128));
            )*
        }};
    }
    strukt!(netelect_result { outcome, winner });
    strukt!(netelect_node_info { id, rtt_ns, rtt_raw_ns, rtt_err_ns, last_heard_ns, healthy, source });
    strukt!(netelect_view_status {
        size, reserved0, generation, self_id, publish_ns, heartbeat_seq, heartbeat_age_ns, forced_reuse, n_nodes,
        n_chans, agent_pid, state, incarnation, abi_major, abi_minor, slot_count, max_nodes,
        max_chans, max_members, registered, stale, heartbeat_period_ns, retries, reattaches,
        pinned_waits, heartbeat_mono_ns, writer_alive, clock_shared,
    });
    strukt!(netelect_view_opts { size, reserved0, fail_static_ns, expect_uid, expect_uid_set });
    rows.push(("sizeof(enum netelect_outcome)".into(), size_of::<netelect_outcome>() as i128));
    rows.push(("sizeof(enum netelect_rtt_source)".into(), size_of::<netelect_rtt_source>() as i128));
    rows.push(("sizeof(enum netelect_agent_state)".into(), size_of::<netelect_agent_state>() as i128));
    macro_rules! consts {
        ($($k:ident),* $(,)?) => { $( rows.push((stringify!($k).into(), $k as i128)); )* };
    }
    consts!(
        NETELECT_VERSION_MAJOR, NETELECT_VERSION_MINOR, NETELECT_VERSION_PATCH,
        NETELECT_VERSION_NUMBER, NETELECT_RTT_UNKNOWN, NETELECT_RTT_MAX_MEASURED,
        NETELECT_EVERSION, NETELECT_ECORRUPT, NETELECT_ESTALE, NETELECT_ENOCHAN,
        NETELECT_NO_ELIGIBLE, NETELECT_SELF_WINS, NETELECT_PEER_WINS, NETELECT_SRC_NONE,
        NETELECT_SRC_PROBE, NETELECT_SRC_SERF, NETELECT_SRC_OPERATOR, NETELECT_AGENT_INIT,
        NETELECT_AGENT_LIVE, NETELECT_AGENT_ABANDONED, NETELECT_AGENT_MOVED, NETELECT_AGENT_STALLED,
    );
    rows
}

#[test]
fn layout_matches_c() {
    let rows = layout_rows();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let src = dir.join("netelect_sys_probe.c");
    let exe = dir.join("netelect_sys_probe");
    let mut c = String::from(
        "#include <netelect.h>\n#include <stddef.h>\n#include <stdio.h>\nint main(void)\n{\n",
    );
    for (expr, _) in &rows {
        // Every value as a signed 128-bit integer: constants include
        // UINT64_MAX and negative codes.
        c += &format!(
            "    {{ __int128 v = (__int128)({expr}); if ((unsigned long long)(v >> 64) + 1 > 1) return 3;\n      printf(\"%s=%lld%s\\n\", \"{expr}\", (long long)v, v > 0x7fffffffffffffffLL ? \"+u\" : \"\"); }}\n"
        );
    }
    c += "    return 0;\n}\n";
    std::fs::write(&src, c).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let mut cmd = Command::new(&cc);
    cmd.arg("-std=c17").arg("-o").arg(&exe).arg(&src);
    for d in include_dirs() {
        cmd.arg("-I").arg(d);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cc}: {e}"));
    assert!(out.status.success(), "the C probe does not compile:\n{}", String::from_utf8_lossy(&out.stderr));
    let run = Command::new(&exe).output().unwrap();
    assert!(run.status.success(), "the C probe failed: {:?}", run.status);
    let text = String::from_utf8(run.stdout).unwrap();
    let mut c_vals = BTreeMap::new();
    for line in text.lines() {
        let (k, v) = line.rsplit_once('=').unwrap();
        let val: i128 = match v.strip_suffix("+u") {
            Some(s) => s.parse::<i64>().unwrap() as u64 as i128,
            None => v.parse().unwrap(),
        };
        c_vals.insert(k.to_string(), val);
    }
    let diffs: Vec<String> = rows
        .iter()
        .filter(|(k, v)| c_vals.get(k) != Some(v))
        .map(|(k, v)| format!("{k}: C {:?}, Rust {v}", c_vals.get(k)))
        .collect();
    assert_eq!(c_vals.len(), rows.len());
    assert!(diffs.is_empty(), "layout differs from C:\n{}", diffs.join("\n"));
}
