//! What a Lambda `bootstrap` needs from the machine that runs it, read from its ELF headers.
//!
//! `lifeboat package` refuses a binary that would not start on Lambda: one for another architecture, one
//! that asks the dynamic linker for a glibc symbol version newer than [`GLIBC_FLOOR`] (the process would
//! exit before `main` with "version `GLIBC_2.xx' not found"), and one that still carries debug sections
//! (every cold start would download and map them). The floor is the oldest glibc among the Amazon Linux
//! releases lifeboat's runtime may land on, so one zip fits them all.
//!
//! Only the parts of ELF64 little-endian that answer those questions are read: the file header, the
//! section headers and their names, and the GNU version-needs section (`SHT_GNU_verneed`), as the System V
//! ABI and the LSB's symbol versioning chapter lay them out.

/// The newest glibc symbol version a bootstrap may need: glibc 2.17, what cargo-lambda's zig linker pins.
pub const GLIBC_FLOOR: GlibcVersion = GlibcVersion([2, 17, 0]);

/// `EM_X86_64`: the architecture of the `x86_64` Lambda functions lifeboat deploys.
const EM_X86_64: u16 = 62;
const SHT_GNU_VERNEED: u32 = 0x6fff_fffe;

/// A glibc symbol version such as `GLIBC_2.2.5` (three parts; missing ones are 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct GlibcVersion(pub [u32; 3]);

impl GlibcVersion {
    /// `GLIBC_2.17` → 2.17; `None` for other version names (`GCC_3.0`, `GLIBC_PRIVATE`, ...).
    pub fn parse(name: &str) -> Option<Self> {
        let mut parts = [0u32; 3];
        let digits = name.strip_prefix("GLIBC_")?;
        let mut count = 0;
        for piece in digits.split('.') {
            if count == parts.len() {
                return None;
            }
            parts[count] = piece.parse().ok()?;
            count += 1;
        }
        (count >= 2).then_some(Self(parts))
    }
}

impl std::fmt::Display for GlibcVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [major, minor, patch] = self.0;
        write!(f, "GLIBC_{major}.{minor}")?;
        if patch != 0 {
            write!(f, ".{patch}")?;
        }
        Ok(())
    }
}

/// What [`inspect`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfFacts {
    /// `e_machine`.
    pub machine: u16,
    /// The newest `GLIBC_*` version the binary needs; `None` for a static binary or one without libc.
    pub newest_glibc: Option<GlibcVersion>,
    /// Sections named `.debug_*` or `.zdebug_*`.
    pub debug_sections: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElfError {
    #[error("not an ELF file")]
    NotElf,
    #[error("not a 64-bit little-endian ELF file")]
    NotElf64LittleEndian,
    #[error("the ELF file is cut short: {what} at byte {offset} runs past its end ({len} bytes)")]
    Truncated {
        what: &'static str,
        offset: u64,
        len: usize,
    },
}

/// Why a bootstrap is unfit for Lambda.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unfit {
    #[error("it is built for ELF machine {0}, not x86_64 ({EM_X86_64})")]
    Architecture(u16),
    #[error(
        "it needs {needed} from the C library, newer than the {GLIBC_FLOOR} that every Lambda runtime has; \
         build it with cargo-lambda's zig linker (target x86_64-unknown-linux-gnu.2.17)"
    )]
    GlibcTooNew { needed: GlibcVersion },
    #[error("it still carries debug sections ({})", .0.join(", "))]
    DebugSections(Vec<String>),
}

/// Reads the facts [`check`] needs from an ELF64 little-endian executable.
pub fn inspect(bytes: &[u8]) -> Result<ElfFacts, ElfError> {
    if bytes.get(..4) != Some(b"\x7fELF") {
        return Err(ElfError::NotElf);
    }
    // EI_CLASS 2 = 64-bit, EI_DATA 1 = little-endian.
    if bytes.get(4) != Some(&2) || bytes.get(5) != Some(&1) {
        return Err(ElfError::NotElf64LittleEndian);
    }
    let file = Reader(bytes);
    let machine = file.u16(0x12, "e_machine")?;
    let section_table = file.u64(0x28, "e_shoff")?;
    let entry_size = u64::from(file.u16(0x3a, "e_shentsize")?);
    let count = file.u16(0x3c, "e_shnum")?;
    let names_index = file.u16(0x3e, "e_shstrndx")?;

    let mut sections = Vec::with_capacity(usize::from(count));
    for index in 0..u64::from(count) {
        let at = section_table + index * entry_size;
        sections.push(Section {
            name: file.u32(at, "sh_name")?,
            kind: file.u32(at + 4, "sh_type")?,
            offset: file.u64(at + 0x18, "sh_offset")?,
            size: file.u64(at + 0x20, "sh_size")?,
            link: file.u32(at + 0x28, "sh_link")?,
            info: file.u32(at + 0x2c, "sh_info")?,
        });
    }
    let names = sections.get(usize::from(names_index));

    let mut debug_sections = Vec::new();
    let mut newest_glibc = None;
    for section in &sections {
        if let Some(names) = names {
            let name = file.string(names.offset + u64::from(section.name))?;
            if name.starts_with(".debug_") || name.starts_with(".zdebug_") {
                debug_sections.push(name.to_owned());
            }
        }
        if section.kind == SHT_GNU_VERNEED {
            let strings = sections
                .get(section.link as usize)
                .map_or(0, |strings| strings.offset);
            for version in version_needs(&file, section, strings)? {
                newest_glibc = newest_glibc.max(Some(version));
            }
        }
    }
    Ok(ElfFacts {
        machine,
        newest_glibc,
        debug_sections,
    })
}

/// Whether a bootstrap with these facts starts on an x86_64 Lambda runtime and carries no debug sections.
pub fn check(facts: &ElfFacts) -> Result<(), Unfit> {
    if facts.machine != EM_X86_64 {
        return Err(Unfit::Architecture(facts.machine));
    }
    if let Some(needed) = facts.newest_glibc.filter(|v| *v > GLIBC_FLOOR) {
        return Err(Unfit::GlibcTooNew { needed });
    }
    if !facts.debug_sections.is_empty() {
        return Err(Unfit::DebugSections(facts.debug_sections.clone()));
    }
    Ok(())
}

struct Section {
    name: u32,
    kind: u32,
    offset: u64,
    size: u64,
    link: u32,
    info: u32,
}

/// The `GLIBC_*` versions named in a version-needs section: `info` entries (`Elf64_Verneed`, 16 bytes),
/// each with `vn_cnt` auxiliary entries (`Elf64_Vernaux`, 16 bytes) naming one version each.
fn version_needs(
    file: &Reader<'_>,
    section: &Section,
    strings: u64,
) -> Result<Vec<GlibcVersion>, ElfError> {
    let mut versions = Vec::new();
    let mut need = section.offset;
    let end = section.offset + section.size;
    for _ in 0..section.info {
        if need >= end {
            break;
        }
        let aux_count = file.u16(need + 2, "vn_cnt")?;
        let mut aux = need + u64::from(file.u32(need + 8, "vn_aux")?);
        for _ in 0..aux_count {
            let name = file.string(strings + u64::from(file.u32(aux + 8, "vna_name")?))?;
            versions.extend(GlibcVersion::parse(name));
            let next = file.u32(aux + 12, "vna_next")?;
            if next == 0 {
                break;
            }
            aux += u64::from(next);
        }
        let next = file.u32(need + 12, "vn_next")?;
        if next == 0 {
            break;
        }
        need += u64::from(next);
    }
    Ok(versions)
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn bytes<const N: usize>(&self, offset: u64, what: &'static str) -> Result<[u8; N], ElfError> {
        let truncated = ElfError::Truncated {
            what,
            offset,
            len: self.0.len(),
        };
        let start = usize::try_from(offset).map_err(|_| truncated.clone())?;
        self.0
            .get(start..start.saturating_add(N))
            .and_then(|slice| slice.try_into().ok())
            .ok_or(truncated)
    }

    fn u16(&self, offset: u64, what: &'static str) -> Result<u16, ElfError> {
        self.bytes(offset, what).map(u16::from_le_bytes)
    }

    fn u32(&self, offset: u64, what: &'static str) -> Result<u32, ElfError> {
        self.bytes(offset, what).map(u32::from_le_bytes)
    }

    fn u64(&self, offset: u64, what: &'static str) -> Result<u64, ElfError> {
        self.bytes(offset, what).map(u64::from_le_bytes)
    }

    /// The NUL-terminated string at `offset` (lossy: names are ASCII).
    fn string(&self, offset: u64) -> Result<&str, ElfError> {
        let truncated = ElfError::Truncated {
            what: "a section or version name",
            offset,
            len: self.0.len(),
        };
        let start = usize::try_from(offset).map_err(|_| truncated.clone())?;
        let rest = self.0.get(start..).ok_or(truncated.clone())?;
        let len = rest.iter().position(|b| *b == 0).ok_or(truncated)?;
        Ok(std::str::from_utf8(&rest[..len]).unwrap_or(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 file: a header, a section-name table, a dynamic string table, a version-needs
    /// section naming `versions` (one library), and a `.debug_line` section when asked.
    fn synthetic_elf(machine: u16, versions: &[&str], with_debug: bool) -> Vec<u8> {
        let mut shstrtab = b"\0.shstrtab\0.dynstr\0.gnu.version_r\0".to_vec();
        let debug_name = shstrtab.len() as u32;
        shstrtab.extend_from_slice(b".debug_line\0");
        let mut dynstr = b"\0libc.so.6\0".to_vec();
        let mut name_offsets = Vec::new();
        for v in versions {
            name_offsets.push(dynstr.len() as u32);
            dynstr.extend_from_slice(v.as_bytes());
            dynstr.push(0);
        }
        let mut verneed = Vec::new();
        verneed.extend_from_slice(&1u16.to_le_bytes()); // vn_version
        verneed.extend_from_slice(&(versions.len() as u16).to_le_bytes()); // vn_cnt
        verneed.extend_from_slice(&1u32.to_le_bytes()); // vn_file: "libc.so.6"
        verneed.extend_from_slice(&16u32.to_le_bytes()); // vn_aux
        verneed.extend_from_slice(&0u32.to_le_bytes()); // vn_next
        for (i, name) in name_offsets.iter().enumerate() {
            verneed.extend_from_slice(&0u32.to_le_bytes()); // vna_hash
            verneed.extend_from_slice(&0u16.to_le_bytes()); // vna_flags
            verneed.extend_from_slice(&(i as u16 + 2).to_le_bytes()); // vna_other
            verneed.extend_from_slice(&name.to_le_bytes()); // vna_name
            let next: u32 = if i + 1 < name_offsets.len() { 16 } else { 0 };
            verneed.extend_from_slice(&next.to_le_bytes());
        }

        let mut file = vec![0u8; 64];
        let place = |file: &mut Vec<u8>, data: &[u8]| {
            let at = file.len() as u64;
            file.extend_from_slice(data);
            at
        };
        let shstrtab_at = place(&mut file, &shstrtab);
        let dynstr_at = place(&mut file, &dynstr);
        let verneed_at = place(&mut file, &verneed);
        let debug_at = place(&mut file, b"line table bytes");
        // (name, type, offset, size, link, info)
        let mut headers: Vec<(u32, u32, u64, u64, u32, u32)> = vec![
            (0, 0, 0, 0, 0, 0),
            (1, 3, shstrtab_at, shstrtab.len() as u64, 0, 0),
            (11, 3, dynstr_at, dynstr.len() as u64, 0, 0),
            (19, SHT_GNU_VERNEED, verneed_at, verneed.len() as u64, 2, 1),
        ];
        if with_debug {
            headers.push((debug_name, 1, debug_at, 16, 0, 0));
        }
        let section_table = file.len() as u64;
        for (name, kind, offset, size, link, info) in &headers {
            let mut entry = vec![0u8; 64];
            entry[0..4].copy_from_slice(&name.to_le_bytes());
            entry[4..8].copy_from_slice(&kind.to_le_bytes());
            entry[0x18..0x20].copy_from_slice(&offset.to_le_bytes());
            entry[0x20..0x28].copy_from_slice(&size.to_le_bytes());
            entry[0x28..0x2c].copy_from_slice(&link.to_le_bytes());
            entry[0x2c..0x30].copy_from_slice(&info.to_le_bytes());
            file.extend_from_slice(&entry);
        }
        file[0..4].copy_from_slice(b"\x7fELF");
        file[4] = 2;
        file[5] = 1;
        file[0x12..0x14].copy_from_slice(&machine.to_le_bytes());
        file[0x28..0x30].copy_from_slice(&section_table.to_le_bytes());
        file[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        file[0x3c..0x3e].copy_from_slice(&(headers.len() as u16).to_le_bytes());
        file[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
        file
    }

    #[test]
    fn glibc_versions_parse_and_order_by_their_numbers() {
        assert_eq!(
            GlibcVersion::parse("GLIBC_2.2.5"),
            Some(GlibcVersion([2, 2, 5]))
        );
        assert_eq!(
            GlibcVersion::parse("GLIBC_2.17"),
            Some(GlibcVersion([2, 17, 0]))
        );
        assert_eq!(GlibcVersion::parse("GLIBC_PRIVATE"), None);
        assert_eq!(GlibcVersion::parse("GCC_3.0"), None);
        assert_eq!(GlibcVersion::parse("GLIBC_2"), None);
        assert!(GlibcVersion::parse("GLIBC_2.9").unwrap() < GLIBC_FLOOR);
        assert!(GlibcVersion::parse("GLIBC_2.34").unwrap() > GLIBC_FLOOR);
        assert_eq!(GlibcVersion([2, 2, 5]).to_string(), "GLIBC_2.2.5");
        assert_eq!(GLIBC_FLOOR.to_string(), "GLIBC_2.17");
    }

    #[test]
    fn the_newest_needed_glibc_version_decides() {
        let old = synthetic_elf(
            EM_X86_64,
            &["GLIBC_2.2.5", "GLIBC_2.17", "GLIBC_PRIVATE"],
            false,
        );
        let facts = inspect(&old).unwrap();
        assert_eq!(facts.newest_glibc, Some(GLIBC_FLOOR));
        assert_eq!(check(&facts), Ok(()));

        let new = synthetic_elf(EM_X86_64, &["GLIBC_2.2.5", "GLIBC_2.34"], false);
        let err = check(&inspect(&new).unwrap()).unwrap_err();
        assert_eq!(
            err,
            Unfit::GlibcTooNew {
                needed: GlibcVersion([2, 34, 0])
            }
        );
        assert!(err.to_string().contains("GLIBC_2.34"), "{err}");
    }

    #[test]
    fn debug_sections_and_other_architectures_are_refused() {
        let debug = inspect(&synthetic_elf(EM_X86_64, &["GLIBC_2.17"], true)).unwrap();
        assert_eq!(debug.debug_sections, vec![".debug_line".to_owned()]);
        assert_eq!(
            check(&debug),
            Err(Unfit::DebugSections(vec![".debug_line".into()]))
        );
        // 183 is EM_AARCH64.
        let arm = inspect(&synthetic_elf(183, &["GLIBC_2.17"], false)).unwrap();
        assert_eq!(check(&arm), Err(Unfit::Architecture(183)));
    }

    #[test]
    fn files_that_are_not_whole_elf64_are_errors_not_panics() {
        assert_eq!(inspect(b"#!/bin/sh\n"), Err(ElfError::NotElf));
        assert_eq!(
            inspect(b"\x7fELF\x01\x01"),
            Err(ElfError::NotElf64LittleEndian)
        );
        let whole = synthetic_elf(EM_X86_64, &["GLIBC_2.17"], false);
        // Every cut of a valid file either parses or says it is truncated.
        for cut in 6..whole.len() {
            match inspect(&whole[..cut]) {
                Ok(_) | Err(ElfError::Truncated { .. }) => {}
                Err(other) => panic!("cut at {cut}: {other}"),
            }
        }
    }

    #[test]
    fn this_test_binary_is_read_as_the_host_built_it() {
        // Built for the host: x86_64 Linux with glibc newer than 2.17 and, as a test build, debug sections.
        let facts = inspect(&std::fs::read(std::env::current_exe().unwrap()).unwrap()).unwrap();
        assert_eq!(facts.machine, EM_X86_64);
        let glibc = facts
            .newest_glibc
            .expect("a dynamically linked test binary");
        assert!(glibc >= GlibcVersion([2, 2, 5]), "{glibc}");
        assert!(
            facts.debug_sections.iter().any(|s| s == ".debug_line"),
            "{:?}",
            facts.debug_sections
        );
    }
}
