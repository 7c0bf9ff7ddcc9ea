//! Reads the Go type descriptors of a Go executable (an upstream `kubectl` 1.33 build):
//! every struct type reachable from the binary's type links, with its fields' Go types
//! (pointer or value, slice, map, …) and struct tags (`json:"…"`, `protobuf:"…"`).
//!
//! Upstream's protobuf encoding and JSON output depend on facts the `.proto` files do not
//! carry: whether a Go field is a pointer (written only when set) or a value (always
//! written), and whether its JSON tag says `omitempty`. The type descriptors the Go
//! linker keeps for reflection carry exactly those facts.
//!
//! Layout read here (amd64, Go 1.20–1.24 `internal/abi`): `Type` is 48 bytes (size,
//! ptrdata, hash, tflag@20, align, fieldAlign, kind@23, equal, gcdata, str@40 (name
//! offset), ptrToThis@44); `PtrType`/`SliceType`/`ArrayType` have `Elem` at 48; `MapType`
//! has `Key` at 48 and `Elem` at 56; `StructType` has `PkgPath` at 48 and `Fields` (ptr,
//! len) at 56/64, each field 24 bytes (name ptr, type ptr, offset); an `UncommonType`
//! (pkgPath name offset first) follows the kind-specific part when tflag bit 0 is set.

use std::collections::{BTreeMap, HashSet};

pub const KIND_BOOL: u8 = 1;
pub const KIND_INT32: u8 = 5;
pub const KIND_INT64: u8 = 6;
pub const KIND_UINT8: u8 = 8;
pub const KIND_FLOAT64: u8 = 14;
pub const KIND_ARRAY: u8 = 17;
pub const KIND_INTERFACE: u8 = 20;
pub const KIND_MAP: u8 = 21;
pub const KIND_PTR: u8 = 22;
pub const KIND_SLICE: u8 = 23;
pub const KIND_STRING: u8 = 24;
pub const KIND_STRUCT: u8 = 25;

/// A Go type, as far as the generator needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GoType {
    /// A scalar kind (bool, int32, string, …) with its (possibly named) type name.
    Scalar(u8, String),
    /// `*T`.
    Ptr(Box<GoType>),
    /// `[]T` (named or not: `name` is the named type's full name, `""` if unnamed).
    Slice(Box<GoType>, String),
    /// `map[K]V` (named or not).
    Map(Box<GoType>, Box<GoType>, String),
    /// A named struct: `pkgpath.Name`.
    Struct(String),
    /// Anything else (interfaces, arrays, funcs).
    Other(String),
}

/// A struct field.
#[derive(Clone, Debug)]
pub struct GoField {
    pub name: String,
    pub ty: GoType,
    pub tag: String,
    pub embedded: bool,
}

impl GoField {
    /// The value of one key of the struct tag (`json`, `protobuf`).
    pub fn tag_value(&self, key: &str) -> Option<String> {
        tag_lookup(&self.tag, key)
    }
}

/// Every named struct of the binary by `pkgpath.Name`, and named slice types.
#[derive(Default)]
pub struct GoTypes {
    pub structs: BTreeMap<String, Vec<GoField>>,
    /// Named slice types (`k8s.io/api/authentication/v1.ExtraValue`) and their element.
    pub slices: BTreeMap<String, GoType>,
    /// The Go version string the binary was built with.
    pub go_version: String,
}

struct Elf<'a> {
    data: &'a [u8],
    /// (address, file offset, size) of every allocated section.
    sections: Vec<(u64, u64, u64)>,
    named: BTreeMap<String, (u64, u64, u64)>,
}

impl<'a> Elf<'a> {
    fn parse(data: &'a [u8]) -> Result<Elf<'a>, String> {
        if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 || data[5] != 1 {
            return Err("not a 64-bit little-endian ELF file".into());
        }
        let rd16 = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]);
        let rd32 = |o: usize| u32::from_le_bytes(data[o..o + 4].try_into().unwrap());
        let rd64 = |o: usize| u64::from_le_bytes(data[o..o + 8].try_into().unwrap());
        let shoff = rd64(0x28) as usize;
        let shentsize = rd16(0x3a) as usize;
        let shnum = rd16(0x3c) as usize;
        let shstrndx = rd16(0x3e) as usize;
        let mut raw = Vec::new();
        for i in 0..shnum {
            let h = shoff + i * shentsize;
            if h + 64 > data.len() {
                return Err("truncated section headers".into());
            }
            raw.push((rd32(h), rd64(h + 0x10), rd64(h + 0x18), rd64(h + 0x20)));
        }
        let strtab = raw.get(shstrndx).ok_or("no section name table")?.2 as usize;
        let mut sections = Vec::new();
        let mut named = BTreeMap::new();
        for (name, addr, off, size) in raw {
            let start = strtab + name as usize;
            let end = start + data[start..].iter().position(|&b| b == 0).unwrap_or(0);
            let name = String::from_utf8_lossy(&data[start..end]).to_string();
            if addr != 0 {
                sections.push((addr, off, size));
            }
            named.insert(name, (addr, off, size));
        }
        Ok(Elf {
            data,
            sections,
            named,
        })
    }

    fn offset(&self, addr: u64) -> Result<usize, String> {
        for &(a, o, s) in &self.sections {
            if addr >= a && addr < a + s {
                return Ok((o + (addr - a)) as usize);
            }
        }
        Err(format!("address {addr:#x} is in no section"))
    }

    fn bytes(&self, addr: u64, n: usize) -> Result<&'a [u8], String> {
        let o = self.offset(addr)?;
        self.data
            .get(o..o + n)
            .ok_or_else(|| format!("read past the end at {addr:#x}"))
    }

    fn u8(&self, addr: u64) -> Result<u8, String> {
        Ok(self.bytes(addr, 1)?[0])
    }

    fn i32(&self, addr: u64) -> Result<i32, String> {
        Ok(i32::from_le_bytes(self.bytes(addr, 4)?.try_into().unwrap()))
    }

    fn u64(&self, addr: u64) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.bytes(addr, 8)?.try_into().unwrap()))
    }
}

struct Reader<'a> {
    elf: Elf<'a>,
    types_base: u64,
}

impl<'a> Reader<'a> {
    fn varint(&self, mut addr: u64) -> Result<(u64, u64), String> {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let b = self.elf.u8(addr)?;
            addr += 1;
            v |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b < 0x80 {
                return Ok((v, addr));
            }
        }
    }

    /// An `abi.Name`: (flags, name, tag).
    fn name(&self, addr: u64) -> Result<(u8, String, String), String> {
        let flags = self.elf.u8(addr)?;
        let (n, p) = self.varint(addr + 1)?;
        let name = String::from_utf8_lossy(self.elf.bytes(p, n as usize)?).to_string();
        let mut tag = String::new();
        if flags & 2 != 0 {
            let (t, q) = self.varint(p + n)?;
            tag = String::from_utf8_lossy(self.elf.bytes(q, t as usize)?).to_string();
        }
        Ok((flags, name, tag))
    }

    fn kind(&self, t: u64) -> Result<u8, String> {
        Ok(self.elf.u8(t + 23)? & 0x1f)
    }

    /// The type's name as Go prints it (`v1.Pod`, `*v1.Pod`, `[]string`).
    fn type_string(&self, t: u64) -> Result<String, String> {
        let tflag = self.elf.u8(t + 20)?;
        let off = self.elf.i32(t + 40)?;
        let (_, mut name, _) = self.name(self.types_base.wrapping_add(off as i64 as u64))?;
        if tflag & 2 != 0 {
            name.remove(0);
        }
        Ok(name)
    }

    /// Whether the type is named (tflag bit 2, `TFlagNamed`).
    fn is_named(&self, t: u64) -> Result<bool, String> {
        Ok(self.elf.u8(t + 20)? & 4 != 0)
    }

    /// The package path of a named type (from its uncommon part), or "".
    fn pkg_path(&self, t: u64) -> Result<String, String> {
        if self.elf.u8(t + 20)? & 1 == 0 {
            return Ok(String::new());
        }
        let uncommon = match self.kind(t)? {
            KIND_STRUCT => t + 80,
            KIND_PTR | KIND_SLICE => t + 56,
            KIND_ARRAY => t + 72,
            _ => return Ok(String::new()),
        };
        let off = self.elf.i32(uncommon)?;
        if off == 0 {
            return Ok(String::new());
        }
        Ok(self
            .name(self.types_base.wrapping_add(off as i64 as u64))?
            .1)
    }

    /// `pkgpath.Name` of a named type.
    fn full_name(&self, t: u64) -> Result<String, String> {
        let s = self.type_string(t)?;
        let short = s.rsplit('.').next().unwrap_or(&s).to_string();
        let pkg = self.pkg_path(t)?;
        Ok(if pkg.is_empty() {
            s
        } else {
            format!("{pkg}.{short}")
        })
    }

    fn go_type(&self, t: u64, depth: usize) -> Result<GoType, String> {
        if depth > 8 {
            return Ok(GoType::Other(self.type_string(t)?));
        }
        let k = self.kind(t)?;
        Ok(match k {
            KIND_PTR => GoType::Ptr(Box::new(self.go_type(self.elf.u64(t + 48)?, depth + 1)?)),
            KIND_SLICE => {
                let name = if self.is_named(t)? {
                    self.full_name(t)?
                } else {
                    String::new()
                };
                GoType::Slice(
                    Box::new(self.go_type(self.elf.u64(t + 48)?, depth + 1)?),
                    name,
                )
            }
            KIND_MAP => {
                let name = if self.is_named(t)? {
                    self.type_string(t)?
                } else {
                    String::new()
                };
                GoType::Map(
                    Box::new(self.go_type(self.elf.u64(t + 48)?, depth + 1)?),
                    Box::new(self.go_type(self.elf.u64(t + 56)?, depth + 1)?),
                    name,
                )
            }
            KIND_STRUCT => GoType::Struct(self.full_name(t)?),
            KIND_INTERFACE | KIND_ARRAY => GoType::Other(self.type_string(t)?),
            _ => GoType::Scalar(k, self.type_string(t)?),
        })
    }

    fn struct_fields(&self, t: u64) -> Result<Vec<GoField>, String> {
        let ptr = self.elf.u64(t + 56)?;
        let len = self.elf.u64(t + 64)?;
        let mut fields = Vec::new();
        for i in 0..len {
            let f = ptr + 24 * i;
            let (flags, name, tag) = self.name(self.elf.u64(f)?)?;
            let ty = self.go_type(self.elf.u64(f + 8)?, 0)?;
            fields.push(GoField {
                name,
                ty,
                tag,
                embedded: flags & 8 != 0,
            });
        }
        Ok(fields)
    }
}

/// Reads every struct type under one of `prefixes` (package paths) from a Go executable.
pub fn read(data: &[u8], prefixes: &[&str]) -> Result<GoTypes, String> {
    let elf = Elf::parse(data)?;
    let rodata = *elf.named.get(".rodata").ok_or("no .rodata section")?;
    let typelink = *elf.named.get(".typelink").ok_or("no .typelink section")?;
    let reader = Reader {
        types_base: rodata.0,
        elf,
    };
    let mut out = GoTypes::default();
    if let Some(&(_, off, size)) = reader.elf.named.get(".go.buildinfo") {
        let info = &data[off as usize..(off + size) as usize];
        if let Some(p) = info.windows(4).position(|w| w == b"go1.") {
            let end = info[p..]
                .iter()
                .position(|&b| !(b.is_ascii_alphanumeric() || b == b'.'))
                .unwrap_or(0);
            out.go_version = String::from_utf8_lossy(&info[p..p + end]).to_string();
        }
    }

    // Walk from every type link through pointers, slices, maps and struct fields.
    let (_, tl_off, tl_size) = typelink;
    let mut stack: Vec<u64> = (0..tl_size / 4)
        .map(|i| {
            let o = (tl_off + 4 * i) as usize;
            let rel = i32::from_le_bytes(data[o..o + 4].try_into().unwrap());
            reader.types_base.wrapping_add(rel as i64 as u64)
        })
        .collect();
    let mut seen = HashSet::new();
    while let Some(t) = stack.pop() {
        if !seen.insert(t) {
            continue;
        }
        match reader.kind(t)? {
            KIND_PTR | KIND_SLICE | KIND_ARRAY => stack.push(reader.elf.u64(t + 48)?),
            KIND_MAP => {
                stack.push(reader.elf.u64(t + 48)?);
                stack.push(reader.elf.u64(t + 56)?);
            }
            KIND_STRUCT => {
                let ptr = reader.elf.u64(t + 56)?;
                let len = reader.elf.u64(t + 64)?;
                if len > 10_000 {
                    return Err(format!("implausible struct at {t:#x}"));
                }
                for i in 0..len {
                    stack.push(reader.elf.u64(ptr + 24 * i + 8)?);
                }
            }
            _ => {}
        }
        let kind = reader.kind(t)?;
        if !reader.is_named(t)? || !(kind == KIND_STRUCT || kind == KIND_SLICE) {
            continue;
        }
        let pkg = reader.pkg_path(t)?;
        if !prefixes.iter().any(|p| pkg == *p) {
            continue;
        }
        let name = reader.full_name(t)?;
        if kind == KIND_STRUCT {
            out.structs.insert(name, reader.struct_fields(t)?);
        } else if let GoType::Slice(elem, _) = reader.go_type(t, 0)? {
            out.slices.insert(name, *elem);
        }
    }
    Ok(out)
}

/// Go's `reflect.StructTag.Lookup`.
pub fn tag_lookup(tag: &str, key: &str) -> Option<String> {
    let mut rest = tag;
    loop {
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            return None;
        }
        let colon = rest.find(':')?;
        let name = &rest[..colon];
        let after = &rest[colon + 1..];
        if !after.starts_with('"') {
            return None;
        }
        let mut end = 1;
        let bytes = after.as_bytes();
        while end < bytes.len() && bytes[end] != b'"' {
            if bytes[end] == b'\\' {
                end += 1;
            }
            end += 1;
        }
        let value = &after[1..end.min(after.len())];
        if name == key {
            return Some(value.to_string());
        }
        rest = &after[(end + 1).min(after.len())..];
    }
}
