//! The wire protocol: a greeting, then length-prefixed postcard frames.
//!
//! Each side first sends a [`Hello`] frame (a fixed magic and its protocol
//! version; its layout never changes, so two versions can always tell each
//! other apart). Every later frame is one [`Message`]. A frame is a 4-byte
//! big-endian length followed by that many bytes of postcard; a length over
//! [`MAX_FRAME`] is refused before anything is read, and a frame's buffer
//! grows only as its bytes arrive, so a peer's length prefix never sizes an
//! allocation.
//!
//! The side that receives objects drives: it asks for commits
//! ([`Message::WantCommits`]) and then for tree nodes and blobs by id
//! ([`Message::WantObjects`]); the other side answers with
//! [`Message::Objects`] batches closed by [`Message::ObjectsEnd`]. A fetch
//! drives from the client; a push hands the driving to the server (after
//! [`Message::Push`] the client answers the server's requests until
//! [`Message::PushResult`]).

use std::io::{BufRead, Read, Write};

use kvgit_core::ObjectId;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// The first bytes of every greeting.
pub const MAGIC: [u8; 8] = *b"kvgit-rp";

/// The largest frame accepted, in bytes: room for the largest value
/// ([`kvgit_core::MAX_VALUE_LEN`]) as one blob object, and a margin.
pub const MAX_FRAME: u32 = (kvgit_core::MAX_VALUE_LEN as u32) + (1 << 20);

/// The payload an object batch aims at: objects are added to a frame until
/// it holds this many bytes (a larger object travels alone).
pub const BATCH_BYTES: usize = 512 << 10;

/// The most ids one request may carry.
pub const MAX_IDS: usize = 4096;

/// The greeting each side sends first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Always [`MAGIC`].
    pub magic: [u8; 8],
    /// The sender's protocol version.
    pub version: u32,
}

/// An object on the wire: its id and its encoded bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireObject {
    /// The id the sender claims for the bytes.
    pub id: ObjectId,
    /// The object's encoding.
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

/// A request to move a ref on the receiving side, stating the value the
/// pusher expects it to hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefUpdate {
    /// The full ref name (`heads/main`).
    pub name: String,
    /// The commit the ref must hold for the update to apply (`None`: it
    /// must not exist).
    pub expected: Option<ObjectId>,
    /// The commit to move it to.
    pub new: ObjectId,
    /// Move it even if `new` does not descend from the current value (the
    /// expected value must still match).
    pub force: bool,
}

/// What became of one [`RefUpdate`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpdateResult {
    /// The ref now holds the new commit.
    Updated,
    /// The ref does not hold the expected commit, or the new one does not
    /// descend from it: pull first.
    NotFastForward {
        /// What the ref holds.
        actual: Option<ObjectId>,
    },
    /// Validation on the receiving side refused it.
    Rejected(String),
}

/// Every frame after the greeting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Asks for the peer's branches and tags.
    ListRefs,
    /// The peer's refs, full names, sorted.
    Refs(Vec<(String, ObjectId)>),
    /// Asks for the commits reachable from `wants` and not from `haves`
    /// (at most `depth` commits deep from each want, if given).
    WantCommits {
        /// Commits the asker needs.
        wants: Vec<ObjectId>,
        /// Commits whose whole history and trees the asker holds.
        haves: Vec<ObjectId>,
        /// How many commits deep to go from each want.
        depth: Option<u32>,
    },
    /// Asks for these objects (tree nodes or blobs), at most [`MAX_IDS`].
    WantObjects(Vec<ObjectId>),
    /// A batch of objects answering a request.
    Objects(Vec<WireObject>),
    /// The end of the answer to a request.
    ObjectsEnd,
    /// Asks the peer to receive a push: it will request the objects it
    /// lacks, then apply the updates and answer [`Message::PushResult`].
    Push(Vec<RefUpdate>),
    /// What became of each update of a push, in order.
    PushResult(Vec<UpdateResult>),
    /// Asks for a Merkle proof of `key` in the tree of the commit a ref
    /// (full name) points at.
    Prove {
        /// The full ref name.
        name: String,
        /// The key.
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
    },
    /// The answer to [`Message::Prove`]: the commit's encoding and the
    /// proof's objects.
    ProofReply {
        /// The commit the ref pointed at, encoded.
        commit: WireObject,
        /// The nodes from the root to the leaf, then the value's blob if
        /// it has one.
        objects: Vec<WireObject>,
    },
    /// The sender failed; the message says why.
    Error(String),
    /// The session ends.
    Bye,
}

impl Message {
    /// The message's name, for error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Message::ListRefs => "ListRefs",
            Message::Refs(_) => "Refs",
            Message::WantCommits { .. } => "WantCommits",
            Message::WantObjects(_) => "WantObjects",
            Message::Objects(_) => "Objects",
            Message::ObjectsEnd => "ObjectsEnd",
            Message::Push(_) => "Push",
            Message::PushResult(_) => "PushResult",
            Message::Prove { .. } => "Prove",
            Message::ProofReply { .. } => "ProofReply",
            Message::Error(_) => "Error",
            Message::Bye => "Bye",
        }
    }
}

/// Bytes and frames that went each way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Bytes written (frames with their length prefixes).
    pub bytes_sent: u64,
    /// Bytes read.
    pub bytes_received: u64,
    /// Times this side waited for the peer after sending something.
    pub round_trips: u64,
}

/// One end of a protocol session over any reader and writer.
pub struct Channel {
    reader: Box<dyn BufRead + Send>,
    writer: Box<dyn Write + Send>,
    /// Whether the peer's greeting has been read and checked.
    greeted: bool,
    /// Whether anything was written since the last read.
    sent: bool,
    traffic: Traffic,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("traffic", &self.traffic)
            .finish_non_exhaustive()
    }
}

impl Channel {
    /// A channel over `reader` and `writer`; our greeting is queued at
    /// once, the peer's is read (and its version checked) before the first
    /// message.
    pub fn new(reader: Box<dyn BufRead + Send>, writer: Box<dyn Write + Send>) -> Result<Self> {
        let mut ch = Channel {
            reader,
            writer,
            greeted: false,
            sent: false,
            traffic: Traffic::default(),
        };
        let hello = Hello {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
        };
        ch.write_frame(&postcard::to_stdvec(&hello).expect("a greeting encodes"))?;
        Ok(ch)
    }

    /// Drops both ends: the peer reads the end of its input, and its
    /// writes fail. Later calls read nothing and write nowhere.
    pub(crate) fn hang_up(&mut self) {
        self.reader = Box::new(std::io::empty());
        self.writer = Box::new(std::io::sink());
    }

    /// What went over the channel so far.
    pub fn traffic(&self) -> Traffic {
        self.traffic
    }

    /// Queues a message (sent at the latest before the next read).
    pub fn send(&mut self, msg: &Message) -> Result<()> {
        let bytes = postcard::to_stdvec(msg).expect("messages encode into a Vec");
        self.write_frame(&bytes)
    }

    /// Sends everything queued.
    pub fn flush(&mut self) -> Result<()> {
        self.writer.flush()?;
        Ok(())
    }

    /// Reads the next message (sending what is queued first). The end of
    /// the stream is an error: sessions end with [`Message::Bye`].
    pub fn recv(&mut self) -> Result<Message> {
        self.recv_or_eof()?
            .ok_or_else(|| Error::protocol("the connection closed"))
    }

    /// Like [`Channel::recv`], `None` if the stream ends cleanly between
    /// frames.
    pub fn recv_or_eof(&mut self) -> Result<Option<Message>> {
        if self.sent {
            self.writer.flush()?;
            self.sent = false;
            self.traffic.round_trips += 1;
        }
        if !self.greeted {
            // Whatever is wrong with the first frame, the peer is not
            // speaking this protocol (an ssh banner, a shell's message).
            let frame = match self.read_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => {
                    return Err(Error::NotKvgit(
                        "the connection closed before the greeting".into(),
                    ))
                }
                Err(Error::Io(e)) => return Err(Error::Io(e)),
                Err(e) => return Err(Error::NotKvgit(e.to_string())),
            };
            let hello: Hello = match postcard::from_bytes(&frame) {
                Ok(hello) => hello,
                Err(_) => return Err(Error::NotKvgit("malformed greeting".into())),
            };
            if hello.magic != MAGIC {
                return Err(Error::NotKvgit(format!(
                    "its greeting starts {:?}",
                    String::from_utf8_lossy(&hello.magic)
                )));
            }
            if hello.version != PROTOCOL_VERSION {
                return Err(Error::Version {
                    ours: PROTOCOL_VERSION,
                    theirs: hello.version,
                });
            }
            self.greeted = true;
        }
        let Some(frame) = self.read_frame()? else {
            return Ok(None);
        };
        let msg: Message = postcard::from_bytes(&frame).map_err(|e| {
            Error::protocol(format!("undecodable message of {} bytes: {e}", frame.len()))
        })?;
        if let Message::Error(reason) = msg {
            return Err(Error::Remote(reason));
        }
        Ok(Some(msg))
    }

    fn write_frame(&mut self, payload: &[u8]) -> Result<()> {
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|len| *len <= MAX_FRAME)
            .ok_or_else(|| {
                Error::protocol(format!(
                    "frame of {} bytes to send is over the limit",
                    payload.len()
                ))
            })?;
        self.writer.write_all(&len.to_be_bytes())?;
        self.writer.write_all(payload)?;
        self.sent = true;
        self.traffic.bytes_sent += 4 + u64::from(len);
        Ok(())
    }

    /// Reads one frame; `None` at a clean end of stream.
    fn read_frame(&mut self) -> Result<Option<Vec<u8>>> {
        let mut prefix = [0u8; 4];
        let mut got = 0;
        while got < prefix.len() {
            match self.reader.read(&mut prefix[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => {
                    return Err(Error::protocol(format!(
                        "truncated frame: the connection closed after {got} of 4 length bytes"
                    )))
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        let len = u32::from_be_bytes(prefix);
        if len > MAX_FRAME {
            return Err(Error::protocol(format!(
                "frame of {len} bytes is over the limit of {MAX_FRAME}"
            )));
        }
        // Grows as bytes arrive: the length sizes nothing up front.
        let mut frame = Vec::new();
        (&mut self.reader)
            .take(u64::from(len))
            .read_to_end(&mut frame)?;
        if frame.len() != len as usize {
            return Err(Error::protocol(format!(
                "truncated frame: the connection closed after {} of {len} bytes",
                frame.len()
            )));
        }
        self.traffic.bytes_received += 4 + u64::from(len);
        Ok(Some(frame))
    }
}

/// Writes one raw frame (for tests of hostile peers): the length prefix and
/// the bytes, unchecked.
pub fn write_raw_frame(w: &mut dyn Write, len: u32, payload: &[u8]) -> std::io::Result<()> {
    w.write_all(&len.to_be_bytes())?;
    w.write_all(payload)
}

/// The encoding of a greeting with `version` (for tests of other versions).
pub fn encode_hello(version: u32) -> Vec<u8> {
    postcard::to_stdvec(&Hello {
        magic: MAGIC,
        version,
    })
    .expect("a greeting encodes")
}

/// The encoding of a message (for tests that write frames by hand).
pub fn encode_message(msg: &Message) -> Vec<u8> {
    postcard::to_stdvec(msg).expect("messages encode into a Vec")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_round_trips_through_a_frame() {
        let mut wire = Vec::new();
        write_raw_frame(&mut wire, 0, &[]).unwrap_or(());
        wire.clear();
        let hello = encode_hello(PROTOCOL_VERSION);
        write_raw_frame(&mut wire, hello.len() as u32, &hello).unwrap();
        let msg = Message::WantObjects(vec![ObjectId::hash(b"x")]);
        let body = encode_message(&msg);
        write_raw_frame(&mut wire, body.len() as u32, &body).unwrap();
        let mut ch = Channel::new(
            Box::new(std::io::Cursor::new(wire)),
            Box::new(std::io::sink()),
        )
        .unwrap();
        assert_eq!(ch.recv().unwrap(), msg);
        assert!(ch.recv_or_eof().unwrap().is_none());
    }
}
