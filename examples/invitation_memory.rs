//! Heap bytes per pending invitation (SPEC L-2), measured with a counting allocator: 1,000
//! parties of one member each invite 16 users (16,000 invitations to 16,000 users), and the
//! live heap grows by what the invitations cost (the party's entry, the invitee's list, the
//! expiry timer, the invitee's id, and the tables' growth, amortized).
//!
//!     cargo run --release --example invitation_memory

use huddle::core::{
    Cid, ConnectOptions, Core, Identity, LobbyRequest, Millis, Now, Outbox, Output, PartyReply, PartyRequest, Reply,
    Request, SessionId, UserId, Username,
};
use huddle::limits::Limits;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

/// Live heap bytes, as the allocator sees them.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const PARTIES: u32 = 1_000;
const PER_PARTY: u32 = 16;

fn main() {
    let mut core = Core::new(Limits::default(), [1; 32]);
    let mut out = Outbox::new();
    let now = Now::simulated(Millis(0));
    let mut parties = Vec::new();
    for i in 0..PARTIES {
        let session = SessionId::new(i, 1);
        let identity = Identity { user_id: UserId::new(&format!("leader-{i}")), username: Username::new("L") };
        core.connect(session, identity, ConnectOptions::default(), now, &mut out);
        out.clear();
        let create = PartyRequest::Create {
            open: true,
            max_size: 4,
            label: String::new(),
            hidden: false,
            lobby: Default::default(),
        };
        core.handle_request(session, Cid(1), Request::Party(create), now, &mut out);
        let Output::Reply { result: Ok(Reply::Party(PartyReply::Info(snapshot))), .. } = &out.outputs()[0] else {
            panic!("create failed")
        };
        parties.push((session, snapshot.party_id));
        out.clear();
    }
    // Warm the outbox's buffers, so the measure holds what the invitations keep, not them.
    out.clear();
    let before = LIVE.load(Ordering::Relaxed);
    for (p, (session, party_id)) in parties.iter().enumerate() {
        // As the decoder builds a request: the invitee ids are allocated with it, and what the
        // invitations keep of them stays.
        let user_ids = (0..PER_PARTY).map(|i| UserId::new(&format!("invitee-{p:04}-{i:02}"))).collect();
        let request = Request::Lobby(LobbyRequest::Invite { party_id: *party_id, user_ids });
        core.handle_request(*session, Cid(2), request, now, &mut out);
        out.clear();
    }
    let after = LIVE.load(Ordering::Relaxed);
    let invitations = (PARTIES * PER_PARTY) as isize;
    assert_eq!(core.lobby_stats().invitations_pending, invitations as usize);
    println!(
        "{invitations} pending invitations to {invitations} users with 15-byte ids: {} heap bytes, {} bytes each",
        after - before,
        (after - before) / invitations
    );
}
