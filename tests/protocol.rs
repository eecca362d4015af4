//! End-to-end tests of protocol rules that cut across features, over real loopback sockets with
//! real tokens: the cid of a frame whose body does not verify is echoed on its error (C-5), party
//! data sent with cid 0 is fire-and-forget (P-9), and the file identifier is written on every
//! frame and optional on input. "Nothing came" is proven by order, not by waiting: a Ping sent
//! after the frame under test must be answered first (the server answers a connection's frames
//! in order), so no timing assertion is needed.

mod common;

use bytes::Bytes;
use common::*;
use huddle::client::Client;
use huddle::core::{Cid, Event, PartyEvent, PartyId, PartyRequest, Reply, Request};
use huddle::wire::{self, fb, Encoder, ErrorCode, ServerMessage, FILE_IDENTIFIER};
use std::net::TcpStream;
use tungstenite::Message;

/// Sends a Ping and returns every message that arrived before its Pong, in order. Fails if the
/// Pong does not come.
fn everything_before_a_pong(client: &mut Client) -> Vec<ServerMessage> {
    let ping = client.send(&Request::Ping).unwrap();
    let mut seen = Vec::new();
    loop {
        match client.next(WAIT).unwrap() {
            ServerMessage::Reply { cid, result: Ok(Reply::Pong) } if cid == ping => return seen,
            other => seen.push(other),
        }
    }
}

fn create_open_party(leader: &mut Client) -> PartyId {
    leader.party_create(true, 4, "", false).unwrap().unwrap().party_id
}

fn join(client: &mut Client, party_id: PartyId) {
    client.party_join(party_id).unwrap().unwrap();
}

fn data_frame(cid: Cid, party_id: PartyId, payload: &'static [u8]) -> Vec<u8> {
    let request = Request::Party(PartyRequest::Data { party_id, op_code: 3, data: Bytes::from_static(payload) });
    Encoder::new().request(cid, &request).to_vec()
}

/// A party-data frame whose envelope (and cid) verifies but whose body does not: the payload's
/// length word points past the end of the frame.
fn frame_with_broken_body(cid: Cid) -> Vec<u8> {
    let mut frame = data_frame(cid, PartyId(1), b"marker");
    let at = frame.windows(6).position(|w| w == b"marker").expect("payload in frame");
    frame[at - 4..at].copy_from_slice(&1_000_000u32.to_le_bytes());
    frame
}

#[test]
fn c5_an_error_for_a_frame_whose_body_does_not_verify_carries_the_requests_cid() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    alice.send_raw(Message::Binary(frame_with_broken_body(Cid(4242)).into())).unwrap();
    match alice.next(WAIT).unwrap() {
        ServerMessage::Reply { cid, result: Err(error) } => {
            assert_eq!(cid, Cid(4242), "the error answers the request it belongs to");
            assert_eq!(error.code, ErrorCode::MalformedEnvelope);
        }
        other => panic!("expected the error reply of cid 4242, got {other:?}"),
    }
    assert_eq!(alice.request(&Request::Ping).unwrap(), Ok(Reply::Pong), "the connection stays open");
}

#[test]
fn c5_an_error_for_a_frame_whose_cid_cannot_be_read_has_cid_zero() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    // The same frame with the envelope's vtable offset pointing outside the frame.
    let mut frame = frame_with_broken_body(Cid(4242));
    let table = u32::from_le_bytes(frame[0..4].try_into().unwrap()) as usize;
    frame[table..table + 4].copy_from_slice(&i32::MAX.to_le_bytes());
    alice.send_raw(Message::Binary(frame.into())).unwrap();
    match alice.next(WAIT).unwrap() {
        ServerMessage::ErrorEvent(error) => assert_eq!(error.code, ErrorCode::MalformedEnvelope),
        other => panic!("expected an error with cid 0, got {other:?}"),
    }
    assert_eq!(alice.request(&Request::Ping).unwrap(), Ok(Reply::Pong), "the connection stays open");
}

#[test]
fn p9_fire_and_forget_data_reaches_the_other_members_and_the_sender_gets_nothing() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut bob = server.connect("bob");
    let mut carol = server.connect("carol");
    let party = create_open_party(&mut alice);
    join(&mut bob, party);
    join(&mut carol, party);
    for client in [&mut alice, &mut bob, &mut carol] {
        everything_before_a_pong(client);
        client.take_events();
    }

    alice.party_data_fire_and_forget(party, 9, b"pos 1 2 3").unwrap();
    let expected = ServerMessage::Event(Event::Party(PartyEvent::Data {
        party_id: party,
        sender: alice.presence().clone(),
        op_code: 9,
        data: Bytes::from_static(b"pos 1 2 3"),
    }));
    assert_eq!(everything_before_a_pong(&mut alice), vec![], "no reply, no error, no echo for the sender");
    assert_eq!(everything_before_a_pong(&mut bob), vec![expected.clone()]);
    assert_eq!(everything_before_a_pong(&mut carol), vec![expected]);
}

#[test]
fn p9_refused_fire_and_forget_data_is_an_error_event_with_cid_zero_naming_the_party() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let mut zed = server.connect("zed");
    let party = create_open_party(&mut alice);
    everything_before_a_pong(&mut alice);

    zed.party_data_fire_and_forget(party, 1, b"not mine").unwrap();
    let error = zed.wait_error_event(WAIT).unwrap();
    assert_eq!(error.code, ErrorCode::PartyNotMember);
    assert!(error.message.contains(&party.to_string()), "names the party: {}", error.message);
    let missing = PartyId(0x5eed);
    zed.party_data_fire_and_forget(missing, 1, b"nobody").unwrap();
    let error = zed.wait_error_event(WAIT).unwrap();
    assert_eq!(error.code, ErrorCode::PartyNotFound);
    assert!(error.message.contains(&missing.to_string()), "names the party: {}", error.message);

    assert_eq!(everything_before_a_pong(&mut zed), vec![], "one error event each, nothing else");
    assert_eq!(everything_before_a_pong(&mut alice), vec![], "the members got nothing");
}

#[test]
fn p9_only_party_data_may_omit_its_cid_a_cid_zero_ping_gets_101() {
    let server = TestServer::start();
    let mut alice = server.connect("alice");
    let party = create_open_party(&mut alice);
    alice.send_with_cid(Cid::NONE, &Request::Ping).unwrap();
    alice.send_with_cid(Cid::NONE, &Request::Party(PartyRequest::Leave { party_id: party })).unwrap();
    let errors: Vec<_> = (0..2).map(|_| alice.wait_error_event(WAIT).unwrap().code).collect();
    assert_eq!(errors, [ErrorCode::MissingCid, ErrorCode::MissingCid]);
    // The cid-0 leave was refused, not applied: alice still leads her party.
    assert_eq!(alice.party_get(party).unwrap().unwrap().leader, *alice.presence());
}

#[test]
fn frames_carry_the_file_identifier_and_frames_without_it_are_accepted() {
    let server = TestServer::start();
    let stream = TcpStream::connect(&server.addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let url = format!("ws://{}/ws?token={}", server.addr, token("alice"));
    let (mut ws, _) = tungstenite::client::client(url.as_str(), stream).expect("upgrade");
    let Message::Binary(welcome) = ws.read().unwrap() else { panic!("expected a binary welcome") };
    assert_eq!(&welcome[4..8], FILE_IDENTIFIER.as_bytes(), "the welcome carries the identifier");

    // A Ping built without the identifier, as another FlatBuffers library may write it.
    let mut builder = flatbuffers::FlatBufferBuilder::new();
    let ping = fb::Ping::create(&mut builder, &fb::PingArgs {}).as_union_value();
    let envelope = fb::Envelope::create(
        &mut builder,
        &fb::EnvelopeArgs { cid: 5, message_type: fb::Message::Ping, message: Some(ping) },
    );
    builder.finish(envelope, None);
    assert_ne!(&builder.finished_data()[4..8], FILE_IDENTIFIER.as_bytes());
    ws.send(Message::Binary(builder.finished_data().to_vec().into())).unwrap();
    let Message::Binary(pong) = ws.read().unwrap() else { panic!("expected a binary pong") };
    assert_eq!(&pong[4..8], FILE_IDENTIFIER.as_bytes(), "the reply carries the identifier");
    assert_eq!(
        wire::decode_server_message(&pong, &wire::verifier_options(1 << 20)),
        Ok(ServerMessage::Reply { cid: Cid(5), result: Ok(Reply::Pong) })
    );
}
