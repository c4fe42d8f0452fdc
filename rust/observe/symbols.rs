//! Where to put the probes: the GIL's functions in an interpreter's ELF file, found in its
//! symbol table (the `object` crate), as file offsets, which is what a uprobe takes.
//!
//! `take_gil` and `drop_gil` are `static` in `Python/ceval_gil.c` (3.2–3.13), so they are local
//! symbols: in `.symtab`, never in `.dynsym`. A stripped binary (Debian's `/usr/bin/python3.11`)
//! has no `.symtab`; its symbols then come from the separate debug file that the distribution's
//! `-dbg`/`-dbgsym` package installs under `/usr/lib/debug/.build-id/`, found by the binary's
//! build id. The compiler may clone a static function (`take_gil.constprop.0` in 3.8.18 here):
//! every clone is probed, since calls may go to any of them.

use object::{Object, ObjectSegment, ObjectSymbol, SymbolKind};
use std::path::{Path, PathBuf};

/// One probe site: a function's entry, as an offset in the file that holds it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Site {
    pub symbol: String,
    pub path: PathBuf,
    pub offset: u64,
}

/// What a file offers: its functions by name (every clone), and data symbols' addresses.
pub struct Symbols {
    pub path: PathBuf,
    /// Where the symbols were read from (the file itself, or its debug file).
    pub symbols_from: PathBuf,
    funcs: Vec<(String, u64)>,
    data: Vec<(String, u64)>,
    /// (p_vaddr, p_offset, p_filesz) of each loadable segment, to turn addresses into offsets.
    segments: Vec<(u64, u64, u64)>,
    /// The lowest segment's p_vaddr rounded down to a page: the load bias is taken from the
    /// mapping at file offset 0.
    pub first_vaddr: u64,
    /// Whether a full symbol table (`.symtab`, the file's or its debug file's) was read, not
    /// only the exported `.dynsym`.
    pub has_symtab: bool,
}

fn build_id_debug_file(data: &[u8]) -> Option<PathBuf> {
    let file = object::File::parse(data).ok()?;
    let id = file.build_id().ok()??;
    if id.len() < 2 {
        return None;
    }
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let p = PathBuf::from(format!(
        "/usr/lib/debug/.build-id/{}/{}.debug",
        &hex[..2],
        &hex[2..]
    ));
    p.exists().then_some(p)
}

impl Symbols {
    /// Read `path`'s symbols (from its debug file when it is stripped).
    pub fn read(path: &Path) -> Result<Symbols, String> {
        let data =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let file = object::File::parse(&*data).map_err(|e| {
            format!(
                "{} is not an ELF file the observer can read: {e}",
                path.display()
            )
        })?;
        let segments: Vec<(u64, u64, u64)> = file
            .segments()
            .map(|s| {
                let (off, size) = s.file_range();
                (s.address(), off, size)
            })
            .collect();
        let first_vaddr = segments.iter().map(|s| s.0).min().unwrap_or(0) & !0xfff;
        let mut out = Symbols {
            path: path.to_path_buf(),
            symbols_from: path.to_path_buf(),
            funcs: Vec::new(),
            data: Vec::new(),
            segments,
            first_vaddr,
            has_symtab: false,
        };
        let debug;
        let symfile = if file.symbols().next().is_some() {
            file
        } else {
            match build_id_debug_file(&data) {
                Some(p) => {
                    debug = std::fs::read(&p)
                        .map_err(|e| format!("cannot read {}: {e}", p.display()))?;
                    out.symbols_from = p;
                    object::File::parse(&*debug)
                        .map_err(|e| format!("{}: {e}", out.symbols_from.display()))?
                }
                None => file,
            }
        };
        out.has_symtab = symfile.section_by_name(".symtab").is_some();
        for s in symfile.symbols().chain(symfile.dynamic_symbols()) {
            let Ok(name) = s.name() else { continue };
            if s.is_undefined() || s.address() == 0 {
                continue;
            }
            match s.kind() {
                SymbolKind::Text => out.funcs.push((name.to_string(), s.address())),
                SymbolKind::Data | SymbolKind::Unknown => {
                    out.data.push((name.to_string(), s.address()))
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Whether the file had any symbol table at all.
    pub fn has_symbols(&self) -> bool {
        !self.funcs.is_empty()
    }

    /// Every distinct entry of the function `name`, its compiler clones (`name.part.0`,
    /// `name.constprop.0`, `name.isra.0`…) and its symbol versions (`name@GLIBC_2.2.5`), as
    /// probe sites.
    pub fn function(&self, name: &str) -> Vec<Site> {
        let mut addrs: Vec<(String, u64)> = self
            .funcs
            .iter()
            // A debug file's .symtab spells versioned symbols `name@@GLIBC_2.3.2`.
            .filter(|(n, _)| {
                n.strip_prefix(name)
                    .is_some_and(|r| r.is_empty() || r.starts_with('.') || r.starts_with('@'))
            })
            .cloned()
            .collect();
        addrs.sort_by_key(|a| a.1);
        addrs.dedup_by_key(|a| a.1);
        addrs
            .into_iter()
            .filter_map(|(symbol, a)| {
                let offset = self.file_offset(a)?;
                Some(Site {
                    symbol,
                    path: self.path.clone(),
                    offset,
                })
            })
            .collect()
    }

    /// A data symbol's link-time address.
    pub fn data(&self, name: &str) -> Option<u64> {
        self.data.iter().find(|(n, _)| n == name).map(|d| d.1)
    }

    /// The file offset of a link-time address (the segment that maps it).
    pub fn file_offset(&self, addr: u64) -> Option<u64> {
        self.segments
            .iter()
            .find(|&&(va, _, size)| addr >= va && addr < va + size)
            .map(|&(va, off, _)| addr - va + off)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_test_binary_functions_are_found_with_offsets_inside_the_file() {
        // This test binary is built with symbols (profile debug = 1): `spin` is a local function.
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let s = Symbols::read(&exe).unwrap();
        assert!(s.has_symbols());
        let len = std::fs::metadata(&exe).unwrap().len();
        let sites = s.function("malloc");
        // malloc is imported, not defined here: no site.
        assert!(sites.is_empty(), "{sites:?}");
        let main = s.function("main");
        assert_eq!(main.len(), 1, "{main:?}");
        assert!(main[0].offset > 0 && main[0].offset < len);
    }

    #[cfg(target_env = "gnu")]
    #[test]
    fn the_c_librarys_versioned_timed_wait_is_found() {
        // Both versions of pthread_cond_timedwait (GLIBC_2.2.5 and 2.3.2), whether the symbols
        // come from .dynsym or a debug file's .symtab: in the glibc this test runs on.
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let libc = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .find(|p| p.contains("/libc.so"))
            .unwrap();
        let s = Symbols::read(Path::new(libc)).unwrap();
        let sites = s.function("pthread_cond_timedwait");
        assert!(!sites.is_empty(), "{:?}", s.symbols_from);
        assert!(
            sites
                .iter()
                .all(|x| x.symbol.starts_with("pthread_cond_timedwait")),
            "{sites:?}"
        );
    }

    #[test]
    fn a_file_that_is_not_elf_is_refused_by_name() {
        let e = Symbols::read(Path::new("/proc/self/status")).err().unwrap();
        assert!(e.contains("/proc/self/status"), "{e}");
    }
}
