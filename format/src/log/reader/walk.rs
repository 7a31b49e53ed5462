//! The walk over a log's frames behind [`LogReader::events`] and
//! [`LogReader::chunks`]: verifies each frame, decodes it whole, and at
//! damage stops or (with [`OnDamage::Skip`]) resumes at the next intact
//! frame.

use super::{LogEvent, LogReader, OnDamage, ReadError, ReadErrorKind, Skipped};
use crate::log::layout;
use crate::record::PacketRecord;

/// Whether a walk with [`OnDamage::Skip`] may try to go past this error:
/// damage inside the committed prefix, or a frame that runs past the end of
/// the file (a torn tail, or a damaged length if intact frames follow), as
/// opposed to a failure to read the file at all.
fn is_skippable(kind: &ReadErrorKind) -> bool {
    matches!(
        kind,
        ReadErrorKind::BadChecksum { .. }
            | ReadErrorKind::BadFrame(_)
            | ReadErrorKind::TornTail { .. }
    )
}

/// The walk of [`LogReader::chunks`]. Not an [`Iterator`]: the records a
/// step hands out borrow the walk's buffer until the next step.
#[derive(Debug)]
pub struct Chunks<'a>(pub(super) Events<'a>);

impl<'a> Chunks<'a> {
    /// The next step: either the records of one RECORDS frame (a non-empty
    /// slice, in order) and `None`, or an empty slice and any other event
    /// (never a [`LogEvent::Record`]). After an error (yielded once, last)
    /// or at the end of the committed prefix, `None`.
    ///
    /// (A pair rather than an enum of its own so that the module's public
    /// types stay those `log` re-exports.)
    #[allow(clippy::should_implement_trait, clippy::type_complexity)] // lending
    pub fn next(
        &mut self,
    ) -> Option<Result<(&[PacketRecord<'a>], Option<LogEvent<'a>>), ReadError>> {
        let e = &mut self.0;
        loop {
            if e.done {
                return None;
            }
            match e.next_frame() {
                Ok(Some(ev)) => return Some(Ok((&[], Some(ev)))),
                Ok(None) if !e.records.is_empty() => {
                    // Handed out whole: `next_frame` clears them next time.
                    e.next_record = e.records.len();
                    return Some(Ok((&e.records, None)));
                }
                Ok(None) => {} // an empty or unknown frame, or the end
                Err(err) => {
                    e.done = true;
                    return Some(Err(err));
                }
            }
        }
    }
}

/// Iterator behind [`LogReader::events`].
#[derive(Debug)]
pub(super) struct Events<'a> {
    reader: &'a LogReader,
    /// Offset of the next frame.
    pos: u64,
    /// Records of the current (verified) RECORDS frame.
    records: Vec<PacketRecord<'a>>,
    next_record: usize,
    footer_seen: bool,
    on_damage: OnDamage,
    /// Whether damage was skipped (the footer may have been in it).
    skipped_any: bool,
    done: bool,
}

impl<'a> Iterator for Events<'a> {
    type Item = Result<LogEvent<'a>, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(r) = self.records.get(self.next_record) {
                self.next_record += 1;
                return Some(Ok(LogEvent::Record(*r)));
            }
            if self.done {
                return None;
            }
            match self.next_frame() {
                Ok(Some(ev)) => return Some(Ok(ev)),
                Ok(None) => {} // records loaded, or a frame skipped
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl<'a> Events<'a> {
    /// A walk of `reader`'s frames from the first one on.
    pub(super) fn new(reader: &'a LogReader, on_damage: OnDamage) -> Events<'a> {
        Events {
            reader,
            pos: reader.info.header_len,
            records: Vec::new(),
            next_record: 0,
            footer_seen: false,
            on_damage,
            skipped_any: false,
            done: false,
        }
    }

    /// Reads the frame at `self.pos`. Returns its event, or `None` after
    /// loading a RECORDS frame into `self.records`, skipping an unknown
    /// frame, or reaching the end (then `self.done` is set). With
    /// [`OnDamage::Skip`], a damaged frame becomes a [`LogEvent::Skipped`]
    /// and the walk resumes at the next intact frame.
    fn next_frame(&mut self) -> Result<Option<LogEvent<'a>>, ReadError> {
        let at = self.pos;
        let result = self.read_frame();
        let e = match result {
            Err(e) if self.on_damage == OnDamage::Skip => e,
            other => return other,
        };
        let end = self.reader.readable_end();
        // Only damage with bytes to skip: at the end of the prefix, a
        // closed log's missing footer is reported, not skipped.
        if !is_skippable(&e.kind) || at >= end {
            return Err(e);
        }
        let resume = if self.footer_seen {
            // Nothing may follow the footer: whatever does is skipped as one
            // stretch, not frame by frame.
            end
        } else {
            self.reader.resync(at)
        };
        // A frame that runs past the end of the file is a torn tail, unless
        // intact frames follow it: then its length was damaged.
        let reason = match e.kind {
            ReadErrorKind::TornTail { .. } if resume >= end => return Err(e),
            ReadErrorKind::TornTail { .. } => {
                "payload_len runs past the end of the file, but intact frames follow (a damaged \
                 length)"
                    .to_string()
            }
            kind => kind.to_string(),
        };
        self.pos = resume;
        self.skipped_any = true;
        Ok(Some(LogEvent::Skipped(Skipped {
            offset: at,
            len: resume - at,
            reason,
        })))
    }

    /// [`Events::next_frame`] without the skipping: any problem is an error.
    fn read_frame(&mut self) -> Result<Option<LogEvent<'a>>, ReadError> {
        let r = self.reader;
        let buf = r.bytes.as_slice();
        let committed = r.info.committed_len;
        let file_len = buf.len() as u64;
        let at = self.pos;
        let torn = || {
            r.error(
                at,
                ReadErrorKind::TornTail {
                    committed,
                    file_len,
                },
            )
        };
        let bad = |why: String| r.error(at, ReadErrorKind::BadFrame(why));
        self.records.clear();
        self.next_record = 0;

        if at == committed {
            self.done = true;
            // After skipped damage the footer may have been in it: that was
            // reported already, as the skipped bytes.
            if r.is_closed() && !self.footer_seen && !self.skipped_any {
                return Err(bad("log is marked closed but has no footer".into()));
            }
            return Ok(None);
        }
        if at > file_len {
            // Only when the file is cut inside the header padding.
            return Err(torn());
        }
        let head_end = at + layout::FRAME_HEADER_LEN as u64;
        if head_end > committed {
            return Err(bad(format!(
                "{} bytes before the committed length {committed}, too few for a frame header",
                committed - at
            )));
        }
        if head_end > file_len {
            return Err(torn());
        }
        if self.footer_seen {
            return Err(bad("frame after the footer".into()));
        }
        // In bounds: head_end <= file_len, which is buf.len().
        let head = &buf[at as usize..head_end as usize];
        let payload_len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let frame_type = head[4];
        let end = head_end + u64::from(payload_len);
        if end > committed {
            return Err(bad(format!(
                "payload of {payload_len} bytes runs past the committed length {committed}"
            )));
        }
        if end > file_len {
            return Err(torn());
        }
        let payload = &buf[head_end as usize..end as usize];
        let stored = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
        let computed = layout::frame_crc(&head[..8], payload);
        if stored != computed {
            return Err(r.error(at, ReadErrorKind::BadChecksum { stored, computed }));
        }
        if head[5] != 0 || head[6] != 0 || head[7] != 0 {
            return Err(bad(format!(
                "frame flags {:#04x} or reserved bytes set, unknown in version 1",
                head[5]
            )));
        }
        let event = match frame_type {
            layout::FRAME_RECORDS => {
                layout::decode_records(payload, &mut self.records).map_err(|why| {
                    self.records.clear();
                    bad(why.to_string())
                })?;
                None
            }
            layout::FRAME_INTERFACE => Some(LogEvent::Interface(
                layout::decode_interface(payload).map_err(|e| bad(e.to_string()))?,
            )),
            layout::FRAME_LOSSES => Some(LogEvent::Losses(
                layout::decode_losses_payload(payload).map_err(|e| bad(e.to_string()))?,
            )),
            layout::FRAME_FOOTER => {
                self.footer_seen = true;
                Some(LogEvent::Footer(
                    layout::decode_footer(payload).map_err(|e| bad(e.to_string()))?,
                ))
            }
            _ => None, // a later minor version's frame: verified, skipped
        };
        self.pos = end;
        Ok(event)
    }
}
