//! A small, safe Python pickle reader (protocols 2 to 5) that turns a pickle into a tree of [`Value`]s without running
//! any Python, plus decoding of the numpy arrays such a tree holds.
//!
//! Objects are never constructed: `REDUCE`/`NEWOBJ` give a [`Value::Object`] holding the class or function, its
//! arguments and the state a later `BUILD` gave it, which is exactly what a stub class with `__setstate__` sees (the
//! trick `tfutil.Network` pickles need). numpy arrays are recognised in the three shapes numpy writes them:
//! `numpy.core.multiarray._reconstruct` + ndarray state (numpy 1.x, protocols 2-4), `numpy.core.numeric._frombuffer`
//! (protocol 5), and `numpy.core.multiarray.scalar` (numpy scalars such as ProGAN's `lod`); numpy 2 writes the same
//! under `numpy._core`. Protocol 2 written by Python 3 stores bytes as `_codecs.encode(text, 'latin1')`, also decoded.

use std::collections::HashMap;
use std::sync::Arc;

/// Deepest nesting the reader follows; real checkpoints nest a handful of levels.
const MAX_DEPTH: usize = 256;
/// Tree nodes one resolution may produce per node read (plus a floor), so that shared references (the memo)
/// cannot blow up exponentially; an ordinary pickle expands to about one tree node per node read.
const RESOLVED_NODES_PER_NODE: usize = 8;
const RESOLVED_NODES_FLOOR: usize = 10_000;

/// A Python value read from a pickle.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// `bytes` and `bytearray` (shared, so large array buffers are not copied when referenced twice).
    Bytes(Arc<Vec<u8>>),
    Tuple(Vec<Value>),
    /// Lists, sets and frozensets.
    List(Vec<Value>),
    /// Dict items in insertion order.
    Dict(Vec<(Value, Value)>),
    /// A class or function named by `GLOBAL`/`STACK_GLOBAL`.
    Global {
        module: String,
        name: String,
    },
    /// `callable(*args)` from `REDUCE` or `cls.__new__(cls, *args)` from `NEWOBJ`, with the state `BUILD` gave it.
    Object {
        callable: Box<Value>,
        args: Box<Value>,
        state: Option<Box<Value>>,
    },
}

impl Value {
    /// The text of a `str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(text) => Some(text),
            _ => None,
        }
    }

    /// An `int` (or `bool`, as Python allows).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(value) => Some(*value),
            Value::Bool(value) => Some(i64::from(*value)),
            _ => None,
        }
    }

    /// A `float` or `int` as f64.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(value) => Some(*value),
            Value::Int(value) => Some(*value as f64),
            Value::Bool(value) => Some(f64::from(u8::from(*value))),
            _ => None,
        }
    }

    /// The items of a tuple or list.
    pub fn as_sequence(&self) -> Option<&[Value]> {
        match self {
            Value::Tuple(items) | Value::List(items) => Some(items),
            _ => None,
        }
    }

    /// The value of a dict under a string key.
    pub fn dict_get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(items) => items.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v),
            _ => None,
        }
    }

    /// For an object: the `(module, name)` of the class or function that made it.
    pub fn object_class(&self) -> Option<(&str, &str)> {
        match self {
            Value::Object { callable, .. } => match callable.as_ref() {
                Value::Global { module, name } => Some((module, name)),
                _ => None,
            },
            _ => None,
        }
    }

    /// A short description of the value's type for error messages, e.g. `tuple of 3` or `object tfutil.Network`.
    pub fn describe(&self) -> String {
        match self {
            Value::None => "None".to_owned(),
            Value::Bool(_) => "bool".to_owned(),
            Value::Int(_) => "int".to_owned(),
            Value::Float(_) => "float".to_owned(),
            Value::Str(_) => "str".to_owned(),
            Value::Bytes(bytes) => format!("bytes of length {}", bytes.len()),
            Value::Tuple(items) => format!("tuple of {}", items.len()),
            Value::List(items) => format!("list of {}", items.len()),
            Value::Dict(items) => format!("dict of {}", items.len()),
            Value::Global { module, name } => format!("global {module}.{name}"),
            Value::Object { .. } => match self.object_class() {
                Some((module, name)) => format!("object {module}.{name}"),
                None => "object".to_owned(),
            },
        }
    }
}

/// Why a byte string could not be read as a pickle.
#[derive(Debug, thiserror::Error)]
pub enum PickleError {
    #[error("not a Python pickle of protocol 2 to 5 (it does not start with a PROTO opcode)")]
    NotPickle,
    #[error("pickle protocol {0} is not supported (2 to 5 are)")]
    Protocol(u8),
    #[error("pickle is truncated at byte {offset}")]
    Truncated { offset: usize },
    #[error("unknown pickle opcode 0x{opcode:02x} at byte {offset}")]
    UnknownOpcode { opcode: u8, offset: usize },
    #[error("pickle opcode `{opcode}` at byte {offset} is not supported: {reason}")]
    Unsupported { opcode: &'static str, offset: usize, reason: &'static str },
    #[error("malformed pickle at byte {offset}: {reason}")]
    Malformed { offset: usize, reason: String },
    #[error("pickle nests deeper than {MAX_DEPTH} levels or is too large to expand")]
    TooComplex,
}

/// Why a pickled value is not a numpy array this reader can decode.
#[derive(Debug, thiserror::Error)]
pub enum NumpyError {
    #[error("not a numpy array: {0}")]
    NotArray(String),
    #[error("numpy dtype `{0}` is not supported (floats f4/f8, integers and bools are)")]
    Dtype(String),
    #[error("numpy array of shape {shape:?} needs {expected} bytes but holds {found}")]
    Size { shape: Vec<usize>, expected: usize, found: usize },
}

/// A decoded numpy array: its shape and values in C order, as f32.
#[derive(Clone, Debug, PartialEq)]
pub struct NdArray {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
    /// The numpy type string, e.g. `<f4`.
    pub dtype: String,
}

/// Reads a whole pickle and returns the value it holds.
pub fn parse_pickle(bytes: &[u8]) -> Result<Value, PickleError> {
    let mut machine = Machine { input: bytes, offset: 0, nodes: Vec::new(), stack: Vec::new(), memo: HashMap::new() };
    let root = machine.run()?;
    let mut budget = machine.nodes.len().saturating_mul(RESOLVED_NODES_PER_NODE).saturating_add(RESOLVED_NODES_FLOOR);
    machine.resolve(root, 0, &mut budget)
}

/// One value inside the machine; containers refer to other nodes so that `BUILD`, `APPEND` and `SETITEM` on a
/// memoised object are seen by every reference to it.
#[derive(Clone, Debug)]
enum Node {
    Leaf(Value),
    Tuple(Vec<usize>),
    List(Vec<usize>),
    Dict(Vec<(usize, usize)>),
    Object { callable: usize, args: usize, state: Option<usize> },
}

#[derive(Clone, Copy, Debug)]
enum Slot {
    Mark,
    Node(usize),
}

struct Machine<'a> {
    input: &'a [u8],
    offset: usize,
    nodes: Vec<Node>,
    stack: Vec<Slot>,
    memo: HashMap<u64, usize>,
}

impl<'a> Machine<'a> {
    fn malformed(&self, reason: impl Into<String>) -> PickleError {
        PickleError::Malformed { offset: self.offset, reason: reason.into() }
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], PickleError> {
        let end = self
            .offset
            .checked_add(count)
            .filter(|&end| end <= self.input.len())
            .ok_or(PickleError::Truncated { offset: self.offset })?;
        let slice = &self.input[self.offset..end];
        self.offset = end;
        Ok(slice)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], PickleError> {
        let mut raw = [0u8; N];
        raw.copy_from_slice(self.take(N)?);
        Ok(raw)
    }

    fn take_u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take_array::<1>()?[0])
    }

    fn take_len_u32(&mut self) -> Result<usize, PickleError> {
        Ok(u32::from_le_bytes(self.take_array()?) as usize)
    }

    fn take_len_u64(&mut self) -> Result<usize, PickleError> {
        let len = u64::from_le_bytes(self.take_array()?);
        usize::try_from(len).map_err(|_| PickleError::Truncated { offset: self.offset })
    }

    fn take_line(&mut self) -> Result<&'a str, PickleError> {
        let rest = &self.input[self.offset..];
        let end = rest.iter().position(|&b| b == b'\n').ok_or(PickleError::Truncated { offset: self.offset })?;
        let line = std::str::from_utf8(&rest[..end]).map_err(|_| self.malformed("text line is not UTF-8"))?;
        self.offset += end + 1;
        Ok(line.trim_end_matches('\r'))
    }

    fn take_utf8(&mut self, len: usize) -> Result<String, PickleError> {
        let raw = self.take(len)?;
        String::from_utf8(raw.to_vec()).map_err(|_| self.malformed("string is not UTF-8"))
    }

    fn add(&mut self, node: Node) -> usize {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn push(&mut self, node: Node) {
        let id = self.add(node);
        self.stack.push(Slot::Node(id));
    }

    fn push_leaf(&mut self, value: Value) {
        self.push(Node::Leaf(value));
    }

    fn pop(&mut self) -> Result<usize, PickleError> {
        match self.stack.pop() {
            Some(Slot::Node(id)) => Ok(id),
            Some(Slot::Mark) => Err(self.malformed("unexpected MARK on the stack")),
            None => Err(self.malformed("stack underflow")),
        }
    }

    fn top(&self) -> Result<usize, PickleError> {
        match self.stack.last() {
            Some(Slot::Node(id)) => Ok(*id),
            Some(Slot::Mark) => Err(self.malformed("unexpected MARK on the stack")),
            None => Err(self.malformed("stack underflow")),
        }
    }

    fn pop_to_mark(&mut self) -> Result<Vec<usize>, PickleError> {
        let mark = self
            .stack
            .iter()
            .rposition(|slot| matches!(slot, Slot::Mark))
            .ok_or_else(|| self.malformed("no MARK on the stack"))?;
        let items = self
            .stack
            .drain(mark + 1..)
            .filter_map(|slot| match slot {
                Slot::Node(id) => Some(id),
                Slot::Mark => None,
            })
            .collect();
        self.stack.truncate(mark);
        Ok(items)
    }

    fn memo_put(&mut self, key: u64) -> Result<(), PickleError> {
        let id = self.top()?;
        self.memo.insert(key, id);
        Ok(())
    }

    fn memo_get(&mut self, key: u64) -> Result<(), PickleError> {
        let id = *self.memo.get(&key).ok_or_else(|| self.malformed(format!("memo key {key} was never stored")))?;
        self.stack.push(Slot::Node(id));
        Ok(())
    }

    fn node_mut(&mut self, id: usize) -> Result<&mut Node, PickleError> {
        let offset = self.offset;
        self.nodes.get_mut(id).ok_or(PickleError::Malformed { offset, reason: "dangling node".to_owned() })
    }

    fn extend_list(&mut self, items: Vec<usize>) -> Result<(), PickleError> {
        let target = self.top()?;
        match self.node_mut(target)? {
            Node::List(list) => {
                list.extend(items);
                Ok(())
            }
            _ => Err(self.malformed("APPEND/ADDITEMS on something that is not a list or set")),
        }
    }

    fn extend_dict(&mut self, items: Vec<usize>) -> Result<(), PickleError> {
        if !items.len().is_multiple_of(2) {
            return Err(self.malformed("SETITEMS with an odd number of items"));
        }
        let target = self.top()?;
        match self.node_mut(target)? {
            Node::Dict(dict) => {
                dict.extend(items.chunks_exact(2).map(|pair| (pair[0], pair[1])));
                Ok(())
            }
            _ => Err(self.malformed("SETITEM on something that is not a dict")),
        }
    }

    fn push_object(&mut self, callable: usize, args: usize) {
        self.push(Node::Object { callable, args, state: None });
    }

    fn push_long(&mut self, raw: &[u8]) -> Result<(), PickleError> {
        // Python longs are little-endian two's complement; anything wider than 64 bits must be sign extension.
        if raw.len() > 8 {
            let sign = if raw[7] & 0x80 != 0 { 0xff } else { 0 };
            if raw[8..].iter().any(|&b| b != sign) {
                return Err(self.malformed("integer wider than 64 bits"));
            }
        }
        let used = &raw[..raw.len().min(8)];
        let negative = used.last().is_some_and(|&b| b & 0x80 != 0);
        let mut buffer = if negative { [0xffu8; 8] } else { [0u8; 8] };
        buffer[..used.len()].copy_from_slice(used);
        self.push_leaf(Value::Int(i64::from_le_bytes(buffer)));
        Ok(())
    }

    /// Runs the opcodes until STOP and returns the node left on the stack.
    fn run(&mut self) -> Result<usize, PickleError> {
        match self.input.first() {
            Some(0x80) => {}
            _ => return Err(PickleError::NotPickle),
        }
        loop {
            let opcode_offset = self.offset;
            let opcode = self.take_u8()?;
            match opcode {
                0x80 => {
                    let protocol = self.take_u8()?;
                    if !(2..=5).contains(&protocol) {
                        return Err(PickleError::Protocol(protocol));
                    }
                }
                // FRAME: an 8-byte frame length, only a hint for buffered readers.
                0x95 => {
                    self.take(8)?;
                }
                b'.' => return self.pop(),
                b'(' => self.stack.push(Slot::Mark),
                b'0' => {
                    self.stack.pop().ok_or_else(|| self.malformed("POP on an empty stack"))?;
                }
                b'1' => {
                    self.pop_to_mark()?;
                }
                b'2' => {
                    let id = self.top()?;
                    self.stack.push(Slot::Node(id));
                }
                b'N' => self.push_leaf(Value::None),
                0x88 => self.push_leaf(Value::Bool(true)),
                0x89 => self.push_leaf(Value::Bool(false)),
                b'J' => {
                    let value = i32::from_le_bytes(self.take_array()?);
                    self.push_leaf(Value::Int(i64::from(value)));
                }
                b'K' => {
                    let value = self.take_u8()?;
                    self.push_leaf(Value::Int(i64::from(value)));
                }
                b'M' => {
                    let value = u16::from_le_bytes(self.take_array()?);
                    self.push_leaf(Value::Int(i64::from(value)));
                }
                0x8a => {
                    let len = usize::from(self.take_u8()?);
                    let raw = self.take(len)?;
                    self.push_long(raw)?;
                }
                0x8b => {
                    let len = self.take_len_u32()?;
                    let raw = self.take(len)?;
                    self.push_long(raw)?;
                }
                b'I' => {
                    let line = self.take_line()?;
                    let value = match line {
                        "00" => Value::Bool(false),
                        "01" => Value::Bool(true),
                        text => Value::Int(text.parse().map_err(|_| self.malformed("bad INT text"))?),
                    };
                    self.push_leaf(value);
                }
                b'L' => {
                    let line = self.take_line()?;
                    let value = line.trim_end_matches('L').parse().map_err(|_| self.malformed("bad LONG text"))?;
                    self.push_leaf(Value::Int(value));
                }
                b'G' => {
                    let value = f64::from_be_bytes(self.take_array()?);
                    self.push_leaf(Value::Float(value));
                }
                b'F' => {
                    let line = self.take_line()?;
                    let value = line.parse().map_err(|_| self.malformed("bad FLOAT text"))?;
                    self.push_leaf(Value::Float(value));
                }
                // Byte strings: BINSTRING/SHORT_BINSTRING (Python 2 `str`), BINBYTES/SHORT_BINBYTES/BINBYTES8, BYTEARRAY8.
                b'T' | b'B' => {
                    let len = self.take_len_u32()?;
                    let raw = self.take(len)?;
                    self.push_leaf(Value::Bytes(Arc::new(raw.to_vec())));
                }
                b'U' | b'C' => {
                    let len = usize::from(self.take_u8()?);
                    let raw = self.take(len)?;
                    self.push_leaf(Value::Bytes(Arc::new(raw.to_vec())));
                }
                0x8e | 0x96 => {
                    let len = self.take_len_u64()?;
                    let raw = self.take(len)?;
                    self.push_leaf(Value::Bytes(Arc::new(raw.to_vec())));
                }
                b'X' => {
                    let len = self.take_len_u32()?;
                    let text = self.take_utf8(len)?;
                    self.push_leaf(Value::Str(text));
                }
                0x8c => {
                    let len = usize::from(self.take_u8()?);
                    let text = self.take_utf8(len)?;
                    self.push_leaf(Value::Str(text));
                }
                0x8d => {
                    let len = self.take_len_u64()?;
                    let text = self.take_utf8(len)?;
                    self.push_leaf(Value::Str(text));
                }
                b')' => self.push(Node::Tuple(Vec::new())),
                b't' => {
                    let items = self.pop_to_mark()?;
                    self.push(Node::Tuple(items));
                }
                0x85..=0x87 => {
                    let count = usize::from(opcode - 0x84);
                    let mut items = Vec::with_capacity(count);
                    for _ in 0..count {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Node::Tuple(items));
                }
                b']' | 0x8f => self.push(Node::List(Vec::new())),
                b'l' | 0x91 => {
                    let items = self.pop_to_mark()?;
                    self.push(Node::List(items));
                }
                b'a' => {
                    let item = self.pop()?;
                    self.extend_list(vec![item])?;
                }
                b'e' | 0x90 => {
                    let items = self.pop_to_mark()?;
                    self.extend_list(items)?;
                }
                b'}' => self.push(Node::Dict(Vec::new())),
                b'd' => {
                    let items = self.pop_to_mark()?;
                    if !items.len().is_multiple_of(2) {
                        return Err(self.malformed("DICT with an odd number of items"));
                    }
                    let pairs = items.chunks_exact(2).map(|pair| (pair[0], pair[1])).collect();
                    self.push(Node::Dict(pairs));
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    self.extend_dict(vec![key, value])?;
                }
                b'u' => {
                    let items = self.pop_to_mark()?;
                    self.extend_dict(items)?;
                }
                b'c' => {
                    let module = self.take_line()?.to_owned();
                    let name = self.take_line()?.to_owned();
                    self.push_leaf(Value::Global { module, name });
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let text = |machine: &Self, id: usize| match machine.nodes.get(id) {
                        Some(Node::Leaf(Value::Str(text))) => Ok(text.clone()),
                        _ => Err(machine.malformed("STACK_GLOBAL needs two strings")),
                    };
                    let (module, name) = (text(self, module)?, text(self, name)?);
                    self.push_leaf(Value::Global { module, name });
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    self.push_object(callable, args);
                }
                0x81 => {
                    let args = self.pop()?;
                    let class = self.pop()?;
                    self.push_object(class, args);
                }
                0x92 => {
                    let _kwargs = self.pop()?;
                    let args = self.pop()?;
                    let class = self.pop()?;
                    self.push_object(class, args);
                }
                b'b' => {
                    let state = self.pop()?;
                    let target = self.top()?;
                    match self.node_mut(target)? {
                        Node::Object { state: slot, .. } => *slot = Some(state),
                        _ => return Err(self.malformed("BUILD on something that is not an object")),
                    }
                }
                b'h' => {
                    let key = self.take_u8()?;
                    self.memo_get(u64::from(key))?;
                }
                b'j' => {
                    let key = u32::from_le_bytes(self.take_array()?);
                    self.memo_get(u64::from(key))?;
                }
                b'g' => {
                    let key = self.take_line()?.parse().map_err(|_| self.malformed("bad GET key"))?;
                    self.memo_get(key)?;
                }
                b'q' => {
                    let key = self.take_u8()?;
                    self.memo_put(u64::from(key))?;
                }
                b'r' => {
                    let key = u32::from_le_bytes(self.take_array()?);
                    self.memo_put(u64::from(key))?;
                }
                b'p' => {
                    let key = self.take_line()?.parse().map_err(|_| self.malformed("bad PUT key"))?;
                    self.memo_put(key)?;
                }
                0x94 => {
                    let key = self.memo.len() as u64;
                    self.memo_put(key)?;
                }
                b'P' | b'Q' => {
                    return Err(PickleError::Unsupported {
                        opcode: "PERSID",
                        offset: opcode_offset,
                        reason: "persistent ids need the writer's own loader (a PyTorch file?)",
                    });
                }
                0x97 | 0x98 => {
                    return Err(PickleError::Unsupported {
                        opcode: "NEXT_BUFFER",
                        offset: opcode_offset,
                        reason: "out-of-band buffers are not stored in the file",
                    });
                }
                0x82..=0x84 => {
                    return Err(PickleError::Unsupported {
                        opcode: "EXT",
                        offset: opcode_offset,
                        reason: "the copyreg extension registry is not available",
                    });
                }
                b'S' | b'V' | b'i' | b'o' => {
                    return Err(PickleError::Unsupported {
                        opcode: "protocol 0/1 text opcode",
                        offset: opcode_offset,
                        reason: "only protocols 2 to 5 are read",
                    });
                }
                other => {
                    return Err(PickleError::UnknownOpcode { opcode: other, offset: opcode_offset });
                }
            }
        }
    }

    /// Turns node `id` into a tree, decoding `_codecs.encode(text, 'latin1')` and `bytes()`/`bytearray()` calls.
    fn resolve(&self, id: usize, depth: usize, budget: &mut usize) -> Result<Value, PickleError> {
        if depth > MAX_DEPTH || *budget == 0 {
            return Err(PickleError::TooComplex);
        }
        *budget -= 1;
        let node = self.nodes.get(id).ok_or(PickleError::TooComplex)?;
        let all = |ids: &[usize], budget: &mut usize| -> Result<Vec<Value>, PickleError> {
            ids.iter().map(|&item| self.resolve(item, depth + 1, budget)).collect()
        };
        Ok(match node {
            Node::Leaf(value) => value.clone(),
            Node::Tuple(items) => Value::Tuple(all(items, budget)?),
            Node::List(items) => Value::List(all(items, budget)?),
            Node::Dict(pairs) => {
                let mut items = Vec::with_capacity(pairs.len());
                for &(key, value) in pairs {
                    items.push((self.resolve(key, depth + 1, budget)?, self.resolve(value, depth + 1, budget)?));
                }
                Value::Dict(items)
            }
            Node::Object { callable, args, state } => {
                let callable = self.resolve(*callable, depth + 1, budget)?;
                let args = self.resolve(*args, depth + 1, budget)?;
                if let Some(bytes) = bytes_constructor(&callable, &args) {
                    return Ok(Value::Bytes(Arc::new(bytes)));
                }
                let state = match state {
                    Some(state) => Some(Box::new(self.resolve(*state, depth + 1, budget)?)),
                    None => None,
                };
                Value::Object { callable: Box::new(callable), args: Box::new(args), state }
            }
        })
    }
}

/// The bytes made by `_codecs.encode(text, 'latin1')`, `bytes(...)` or `bytearray(...)`, as Python 3 writes
/// bytes in protocol 2; None for any other call.
fn bytes_constructor(callable: &Value, args: &Value) -> Option<Vec<u8>> {
    let Value::Global { module, name } = callable else {
        return None;
    };
    let args = args.as_sequence()?;
    let latin1 = |text: &str| text.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect::<Option<Vec<u8>>>();
    match (module.as_str(), name.as_str(), args) {
        ("_codecs", "encode", [Value::Str(text), Value::Str(encoding)])
            if matches!(encoding.as_str(), "latin1" | "latin-1" | "iso-8859-1") =>
        {
            latin1(text)
        }
        ("builtins" | "__builtin__", "bytes" | "bytearray", []) => Some(Vec::new()),
        ("builtins" | "__builtin__", "bytes" | "bytearray", [Value::Bytes(bytes)]) => Some(bytes.to_vec()),
        ("builtins" | "__builtin__", "bytes" | "bytearray", [Value::Str(text), Value::Str(_)]) => latin1(text),
        _ => None,
    }
}

/// Whether `module.name` is numpy's function `function` in `numpy.core.<submodule>` (numpy 1.x) or
/// `numpy._core.<submodule>` (numpy 2).
fn is_numpy_function(value: &Value, submodule: &str, function: &str) -> bool {
    match value {
        Value::Global { module, name } => {
            name == function
                && (module.strip_prefix("numpy.core.") == Some(submodule)
                    || module.strip_prefix("numpy._core.") == Some(submodule))
        }
        _ => false,
    }
}

/// Whether the value is a numpy array or scalar in one of the pickled forms this reader knows.
pub fn is_ndarray(value: &Value) -> bool {
    match value {
        Value::Object { callable, .. } => {
            is_numpy_function(callable, "multiarray", "_reconstruct")
                || is_numpy_function(callable, "numeric", "_frombuffer")
                || is_numpy_function(callable, "multiarray", "scalar")
        }
        _ => false,
    }
}

/// Decodes a pickled numpy array or numpy scalar (shape `[]`) of float32 or float64.
pub fn ndarray_from_value(value: &Value) -> Result<NdArray, NumpyError> {
    let not_array = || NumpyError::NotArray(value.describe());
    let Value::Object { callable, args, state } = value else {
        return Err(not_array());
    };
    let args = args.as_sequence().ok_or_else(not_array)?;
    if is_numpy_function(callable, "multiarray", "_reconstruct") {
        // state = (version, shape, dtype, is_fortran, data) or, older, (shape, dtype, is_fortran, data)
        let state = state.as_deref().and_then(Value::as_sequence).ok_or_else(not_array)?;
        let state = match state {
            [Value::Int(_), rest @ ..] if rest.len() == 4 => rest,
            rest if rest.len() == 4 => rest,
            _ => return Err(NumpyError::NotArray("ndarray state is not a 4- or 5-tuple".to_owned())),
        };
        let shape = shape_of(&state[0])?;
        let dtype = Dtype::from_value(&state[1])?;
        let fortran = matches!(state[2], Value::Bool(true) | Value::Int(1));
        let Value::Bytes(data) = &state[3] else {
            return Err(NumpyError::NotArray(format!(
                "ndarray data is a {} (object arrays are not supported)",
                state[3].describe()
            )));
        };
        return dtype.decode(data, shape, fortran);
    }
    if is_numpy_function(callable, "numeric", "_frombuffer") {
        // args = (buffer, dtype, shape, order)
        let [Value::Bytes(data), dtype, shape, order] = args else {
            return Err(NumpyError::NotArray("_frombuffer arguments are not (bytes, dtype, shape, order)".to_owned()));
        };
        let fortran = order.as_str() == Some("F");
        return Dtype::from_value(dtype)?.decode(data, shape_of(shape)?, fortran);
    }
    if is_numpy_function(callable, "multiarray", "scalar") {
        // args = (dtype, raw bytes of one value)
        let [dtype, Value::Bytes(data)] = args else {
            return Err(NumpyError::NotArray("scalar arguments are not (dtype, bytes)".to_owned()));
        };
        return Dtype::from_value(dtype)?.decode(data, Vec::new(), false);
    }
    Err(not_array())
}

fn shape_of(value: &Value) -> Result<Vec<usize>, NumpyError> {
    value
        .as_sequence()
        .and_then(|dims| {
            dims.iter().map(|dim| dim.as_int().and_then(|d| usize::try_from(d).ok())).collect::<Option<Vec<usize>>>()
        })
        .ok_or_else(|| NumpyError::NotArray(format!("shape is a {}", value.describe())))
}

/// Whether elements are IEEE floats, signed or unsigned integers.
#[derive(Clone, Copy)]
enum ElementKind {
    Float,
    Signed,
    Unsigned,
}

/// The element types the reader decodes (floats, integers and bools, all returned as f32).
struct Dtype {
    kind: ElementKind,
    bytes_per_value: usize,
    big_endian: bool,
    name: String,
}

impl Dtype {
    /// Reads `numpy.dtype('f4', False, True)` with its BUILD state `(3, '<', ...)`.
    fn from_value(value: &Value) -> Result<Self, NumpyError> {
        let describe = || NumpyError::NotArray(format!("dtype is a {}", value.describe()));
        let Value::Object { callable, args, state } = value else {
            return Err(describe());
        };
        match callable.as_ref() {
            Value::Global { module, name } if module == "numpy" && name == "dtype" => {}
            _ => return Err(describe()),
        }
        let code = args.as_sequence().and_then(|args| args.first()).and_then(Value::as_str).ok_or_else(describe)?;
        let order = state
            .as_deref()
            .and_then(Value::as_sequence)
            .and_then(|state| state.get(1))
            .and_then(Value::as_str)
            .unwrap_or("<");
        let code = code.trim_start_matches(['<', '>', '=', '|']);
        let (kind, bytes_per_value) = match code {
            "f4" | "float32" => (ElementKind::Float, 4),
            "f8" | "float64" => (ElementKind::Float, 8),
            "i1" => (ElementKind::Signed, 1),
            "i2" => (ElementKind::Signed, 2),
            "i4" => (ElementKind::Signed, 4),
            "i8" => (ElementKind::Signed, 8),
            "u1" | "b1" => (ElementKind::Unsigned, 1),
            "u2" => (ElementKind::Unsigned, 2),
            "u4" => (ElementKind::Unsigned, 4),
            "u8" => (ElementKind::Unsigned, 8),
            _ => return Err(NumpyError::Dtype(format!("{order}{code}"))),
        };
        Ok(Self { kind, bytes_per_value, big_endian: order == ">", name: format!("{order}{code}") })
    }

    /// One element as f32 (`chunk` has exactly `bytes_per_value` bytes).
    fn value_of(&self, chunk: &[u8]) -> f32 {
        // Gather the bytes little-endian first into 8 bytes.
        let mut raw = [0u8; 8];
        for (i, byte) in chunk.iter().enumerate().take(8) {
            let at = if self.big_endian { chunk.len() - 1 - i } else { i };
            raw[at] = *byte;
        }
        let bits = 8 * self.bytes_per_value as u32;
        match (self.kind, self.bytes_per_value) {
            (ElementKind::Float, 4) => f32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]),
            (ElementKind::Float, _) => f64::from_le_bytes(raw) as f32,
            (ElementKind::Unsigned, _) => u64::from_le_bytes(raw) as f32,
            // Sign-extend from the element's width.
            (ElementKind::Signed, _) => {
                let shift = 64 - bits;
                (i64::from_le_bytes(raw).wrapping_shl(shift).wrapping_shr(shift)) as f32
            }
        }
    }

    fn decode(&self, data: &[u8], shape: Vec<usize>, fortran: bool) -> Result<NdArray, NumpyError> {
        let count = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
        let expected = count.and_then(|c| c.checked_mul(self.bytes_per_value));
        let (Some(count), Some(expected)) = (count, expected) else {
            return Err(NumpyError::NotArray(format!("shape {shape:?} overflows")));
        };
        if data.len() != expected {
            return Err(NumpyError::Size { shape, expected, found: data.len() });
        }
        let values: Vec<f32> = data.chunks_exact(self.bytes_per_value).map(|chunk| self.value_of(chunk)).collect();
        debug_assert_eq!(values.len(), count);
        let data = if fortran && shape.len() > 1 { fortran_to_c(&values, &shape) } else { values };
        Ok(NdArray { shape, data, dtype: self.name.clone() })
    }
}

/// Reorders column-major values into row-major order.
fn fortran_to_c(values: &[f32], shape: &[usize]) -> Vec<f32> {
    let mut fortran_strides = vec![1usize; shape.len()];
    for axis in 1..shape.len() {
        fortran_strides[axis] = fortran_strides[axis - 1] * shape[axis - 1];
    }
    let mut index = vec![0usize; shape.len()];
    let mut out = Vec::with_capacity(values.len());
    for _ in 0..values.len() {
        let source: usize = index.iter().zip(&fortran_strides).map(|(i, s)| i * s).sum();
        out.push(values.get(source).copied().unwrap_or(0.0));
        // Advance the C-order multi-index (last axis fastest).
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            if index[axis] < shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Bytes from `pickle.dumps(..., protocol=2)` in CPython 3.11 with numpy 1.26, written out by hand-checked
    // opcodes (see pickletools.dis) so the tests need no Python.

    #[test]
    fn reads_basic_containers_protocol_2() {
        // pickle.dumps((1, -2, 3.5, 'ab', [True, None], {'k': 300}), protocol=2)
        let bytes = b"\x80\x02(K\x01J\xfe\xff\xff\xffG@\x0c\x00\x00\x00\x00\x00\x00X\x02\x00\x00\x00abq\x00]q\x01(\x88Ne}q\x02X\x01\x00\x00\x00kq\x03M,\x01stq\x04.";
        let value = parse_pickle(bytes).unwrap();
        let items = value.as_sequence().unwrap();
        assert_eq!(items[0], Value::Int(1));
        assert_eq!(items[1], Value::Int(-2));
        assert_eq!(items[2], Value::Float(3.5));
        assert_eq!(items[3].as_str(), Some("ab"));
        assert_eq!(items[4], Value::List(vec![Value::Bool(true), Value::None]));
        assert_eq!(items[5].dict_get("k"), Some(&Value::Int(300)));
    }

    #[test]
    fn memo_shares_mutations() {
        // A list memoised before its items are appended, then referenced again: l = [1]; (l, l)
        let bytes = b"\x80\x02]q\x00K\x01ah\x00\x86q\x01.";
        let value = parse_pickle(bytes).unwrap();
        let one = Value::List(vec![Value::Int(1)]);
        assert_eq!(value, Value::Tuple(vec![one.clone(), one]));
    }

    #[test]
    fn decodes_latin1_bytes_and_long1() {
        // pickle.dumps((b'\x00\xff', 2**40, -1), protocol=2)
        let bytes = b"\x80\x02c_codecs\nencode\nq\x00X\x03\x00\x00\x00\x00\xc3\xbfq\x01X\x06\x00\x00\x00latin1q\x02\x86q\x03Rq\x04\x8a\x06\x00\x00\x00\x00\x00\x01J\xff\xff\xff\xff\x87q\x05.";
        let value = parse_pickle(bytes).unwrap();
        let items = value.as_sequence().unwrap();
        assert_eq!(items[0], Value::Bytes(Arc::new(vec![0, 255])));
        assert_eq!(items[1], Value::Int(1 << 40));
        assert_eq!(items[2], Value::Int(-1));
    }

    #[test]
    fn decodes_frombuffer_array_and_fortran_order() {
        let dtype = Value::Object {
            callable: Box::new(Value::Global { module: "numpy".into(), name: "dtype".into() }),
            args: Box::new(Value::Tuple(vec![Value::Str("f4".into()), Value::Bool(false), Value::Bool(true)])),
            state: Some(Box::new(Value::Tuple(vec![Value::Int(3), Value::Str("<".into())]))),
        };
        let data: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let array = |order: &str| Value::Object {
            callable: Box::new(Value::Global { module: "numpy._core.numeric".into(), name: "_frombuffer".into() }),
            args: Box::new(Value::Tuple(vec![
                Value::Bytes(Arc::new(data.clone())),
                dtype.clone(),
                Value::Tuple(vec![Value::Int(2), Value::Int(3)]),
                Value::Str(order.into()),
            ])),
            state: None,
        };
        let c = ndarray_from_value(&array("C")).unwrap();
        assert_eq!(c.shape, vec![2, 3]);
        assert_eq!(c.data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        // Column-major [[1,3,5],[2,4,6]]
        let f = ndarray_from_value(&array("F")).unwrap();
        assert_eq!(f.data, vec![1.0, 3.0, 5.0, 2.0, 4.0, 6.0]);
    }

    #[test]
    fn decodes_integer_scalars_of_any_width_and_order() {
        let scalar = |code: &str, order: &str, bytes: Vec<u8>| Value::Object {
            callable: Box::new(Value::Global { module: "numpy.core.multiarray".into(), name: "scalar".into() }),
            args: Box::new(Value::Tuple(vec![
                Value::Object {
                    callable: Box::new(Value::Global { module: "numpy".into(), name: "dtype".into() }),
                    args: Box::new(Value::Tuple(vec![Value::Str(code.into())])),
                    state: Some(Box::new(Value::Tuple(vec![Value::Int(3), Value::Str(order.into())]))),
                },
                Value::Bytes(Arc::new(bytes)),
            ])),
            state: None,
        };
        let decoded = |v: Value| ndarray_from_value(&v).unwrap();
        assert_eq!(decoded(scalar("i8", "<", 256i64.to_le_bytes().to_vec())).data, vec![256.0]);
        assert_eq!(decoded(scalar("i2", ">", (-3i16).to_be_bytes().to_vec())).data, vec![-3.0]);
        assert_eq!(decoded(scalar("u1", "|", vec![200])).data, vec![200.0]);
        assert_eq!(decoded(scalar("f8", ">", 0.25f64.to_be_bytes().to_vec())).shape, Vec::<usize>::new());
        assert!(matches!(ndarray_from_value(&scalar("c8", "<", vec![0; 8])), Err(NumpyError::Dtype(_))));
    }

    #[test]
    fn refuses_garbage_without_panicking() {
        assert!(matches!(parse_pickle(b""), Err(PickleError::NotPickle)));
        assert!(matches!(parse_pickle(b"PK\x03\x04"), Err(PickleError::NotPickle)));
        assert!(matches!(parse_pickle(b"\x80\x09."), Err(PickleError::Protocol(9))));
        assert!(matches!(parse_pickle(b"\x80\x02"), Err(PickleError::Truncated { .. })));
        assert!(matches!(parse_pickle(b"\x80\x02B\xff\xff\xff\x7f"), Err(PickleError::Truncated { .. })));
        assert!(matches!(parse_pickle(b"\x80\x02h\x05."), Err(PickleError::Malformed { .. })));
        assert!(matches!(parse_pickle(b"\x80\x02."), Err(PickleError::Malformed { .. })));
        assert!(matches!(parse_pickle(b"\x80\x02\xff"), Err(PickleError::UnknownOpcode { .. })));
        // Every prefix of a valid pickle fails cleanly.
        let bytes = b"\x80\x02(K\x01J\xfe\xff\xff\xffG@\x0c\x00\x00\x00\x00\x00\x00X\x02\x00\x00\x00abq\x00]q\x01(\x88Ne}q\x02X\x01\x00\x00\x00kq\x03M,\x01stq\x04.";
        for end in 0..bytes.len() {
            assert!(parse_pickle(&bytes[..end]).is_err());
        }
    }

    #[test]
    fn exponential_sharing_is_refused() {
        // x = []; for 64 times: x = (x, x)  -> 2^64 nodes if expanded naively
        let mut bytes = b"\x80\x02]q\x00".to_vec();
        for i in 0..64u8 {
            bytes.extend_from_slice(&[b'2', 0x86, b'q', i + 1]);
        }
        bytes.push(b'.');
        assert!(matches!(parse_pickle(&bytes), Err(PickleError::TooComplex)));
    }
}
