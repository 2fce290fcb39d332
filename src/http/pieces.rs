//! A kept body handed to actix-web in pieces: slices of the kept bytes, never copies.
//!
//! actix-web copies a body it is given whole into the connection's write buffer, and drops a
//! buffer that grew past 128 KiB once it is written: a 185 KB picture in one piece made every
//! answer allocate (and fault in) a new buffer, and 64 readers of a 5 MB sitemap file would hold
//! 320 MB. In pieces of at most `PIECE_BYTES`, each connection holds a piece or two at a time.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use actix_web::web::Bytes;

/// The largest piece, under the 128 KiB past which actix-web drops a write buffer.
pub const PIECE_BYTES: usize = 96 * 1024;

/// A body of kept bytes, handed over a piece at a time.
pub struct Pieces {
    rest: Bytes,
    /// Whether to give the worker's other connections a turn between pieces.
    taking_turns: bool,
    /// Set once this body has stepped aside since its last piece.
    stepped_aside: bool,
}

impl Pieces {
    /// Pieces handed over as fast as the connection takes them: for a body of a piece or two.
    pub fn new(bytes: Bytes) -> Pieces {
        Pieces {
            rest: bytes,
            taking_turns: false,
            stepped_aside: false,
        }
    }

    /// Pieces handed over in turn with the worker's other connections. Loopback and fast
    /// clients take megabytes before the socket says "wait", so actix-web would write a whole
    /// large body before serving any other connection of its worker, and the readers behind it
    /// waited. A 5 MB sitemap file to 64 connections at once, four runs each: without turns p50
    /// 71-77 ms but p99 0.98-1.41 s (wrk timed some out); in turns p50 102-112 ms, p99 mostly
    /// 0.17-0.25 s. The rest of the tail is TCP's (zero windows and loss probes while the client
    /// is starved of CPU): nginx serving the same bytes shows p99 0.21-0.24 s.
    pub fn taking_turns(bytes: Bytes) -> Pieces {
        Pieces {
            taking_turns: true,
            ..Pieces::new(bytes)
        }
    }
}

impl MessageBody for Pieces {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.rest.len() as u64)
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        if self.rest.is_empty() {
            return Poll::Ready(None);
        }
        if self.taking_turns && !self.stepped_aside {
            // Asked again at once, behind the tasks already waiting for this worker.
            self.stepped_aside = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.stepped_aside = false;
        let piece = self.rest.len().min(PIECE_BYTES);
        Poll::Ready(Some(Ok(self.rest.split_to(piece))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything a body hands over, counting the times it stepped aside.
    fn drain(mut body: Pieces) -> (Vec<u8>, usize, usize) {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let (mut bytes, mut pieces, mut aside) = (Vec::new(), 0, 0);
        loop {
            match Pin::new(&mut body).poll_next(&mut cx) {
                Poll::Ready(Some(Ok(piece))) => {
                    assert!(piece.len() <= PIECE_BYTES);
                    bytes.extend_from_slice(&piece);
                    pieces += 1;
                }
                Poll::Ready(None) => return (bytes, pieces, aside),
                Poll::Pending => aside += 1,
            }
        }
    }

    #[test]
    fn every_byte_arrives_in_order_in_pieces_with_turns_between_them_when_asked() {
        let kept: Vec<u8> = (0..(PIECE_BYTES * 2 + 17))
            .map(|i| (i % 251) as u8)
            .collect();
        let body = Pieces::new(Bytes::from(kept.clone()));
        assert_eq!(body.size(), BodySize::Sized(kept.len() as u64));
        assert_eq!(drain(body), (kept.clone(), 3, 0));
        assert_eq!(
            drain(Pieces::taking_turns(Bytes::from(kept.clone()))),
            (kept, 3, 3)
        );
        assert_eq!(
            drain(Pieces::taking_turns(Bytes::new())),
            (Vec::new(), 0, 0)
        );
    }
}
