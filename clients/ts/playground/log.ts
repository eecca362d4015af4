// The event log beside the lobby: every request, reply, server event and lifecycle change, newest
// at the bottom, one line each with a summary and the full message as JSON behind a toggle.
// Summaries come from one table by message type; a type without a row (a message the schema
// gains) is still logged, summarised by its JSON.

import type { Inbound, InboundName, Party } from '../src/index.js';
import { h } from './dom.js';
import { bytesText, shortId, spaced, timeOfDay, toJson, who } from './format.js';

/** Entries kept; older ones are dropped (a page left open must not grow without bound). */
const ENTRIES_MAX = 1000;

export type EntryKind = 'out' | 'reply' | 'event' | 'error' | 'info';

const ARROWS: Record<EntryKind, string> = { out: '→', reply: '←', event: '⇠', error: '✖', info: '•' };

type Summaries = { [K in InboundName]?: (message: Inbound<K>) => string };

const list = (items: string[]): string => (items.length === 0 ? '—' : items.join(', '));

/** A party snapshot in one line (replies, `partyJoined`, `partySnapshot`). */
const snapshot = (m: Party): string => `party ${shortId(m.partyId)} v${m.version}: ${m.members.length}/${m.maxSize}, leader ${who(m.leader)}`;

/** One line per message type; the rest are summarised by their JSON. */
export const SUMMARIES: Summaries = {
  welcome: (m) => `${who(m.presence)}, session ${m.presence.sessionId}, server ${m.serverVersion}`,
  error: (m) => `${m.code} ${m.name}: ${m.message}`,
  pong: () => '',
  partyInfo: snapshot,
  partyJoinPending: (m) => `party ${shortId(m.partyId)}: waiting for the leader to accept`,
  partyJoinRequestList: (m) => `party ${shortId(m.partyId)}: ${list(m.presences.map(who))}`,
  partyOk: (m) => `party ${shortId(m.partyId)}`,
  partyMyListResult: (m) => `${m.parties.length} parties: ${list(m.parties.map((p) => shortId(p.partyId)))}`,
  partyPresence: (m) =>
    `party ${shortId(m.partyId)} v${m.version}: ` + [m.joins.length > 0 ? `joins ${list(m.joins.map(who))}` : '', m.leaves.length > 0 ? `leaves ${list(m.leaves.map(who))}` : ''].filter((s) => s !== '').join('; '),
  partyJoinRequest: (m) => `party ${shortId(m.partyId)}: ${list(m.presences.map(who))} asks to join`,
  partyLeader: (m) => `party ${shortId(m.partyId)} v${m.version}: leader is now ${who(m.leader)}`,
  partyRemoved: (m) => `party ${shortId(m.partyId)} v${m.version}: ${m.reason}`,
  partyData: (m) => `${who(m.sender)} → op ${m.opCode}: ${bytesText(m.data)}`,
  partyUpdated: (m) =>
    `party ${shortId(m.partyId)} v${m.version}: ${m.open ? 'open' : 'closed'}${m.hidden ? ', hidden' : ''}, max ${m.maxSize}, label ${m.label || '—'}, ` +
    `joins: ${spaced(m.joinStrategy)}, invites: ${spaced(m.inviteStrategy)}`,
  partyJoined: (m) => `${snapshot(m.party)}: accepted`,
  statusUpdated: () => '',
  statusFollowed: (m) => list(m.presences.map((p) => `${who(p.presence)}: ${p.status || '(online)'}`)),
  statusUnfollowed: () => '',
  // A status change is the session's old status leaving and its new one joining.
  statusPresenceEvent: (m) =>
    [
      ...m.joins.map((p) => `${who(p.presence)} is ${p.status === '' ? 'online' : `"${p.status}"`}`),
      ...m.leaves.filter((l) => !m.joins.some((j) => j.presence.sessionId === l.presence.sessionId)).map((p) => `${who(p.presence)} went offline`),
    ].join('; '),
  partySearchResult: (m) => `${m.parties.length} found${m.cursor === null ? '' : ', more pages'}`,
  partyInvitationListResult: (m) => `${m.invitations.length} pending: ${list(m.invitations.map((i) => `party ${shortId(i.party.partyId)} from ${who(i.inviter)}`))}`,
  partyCode: (m) => `party ${shortId(m.partyId)}: code ${m.code}`,
  partyInvited: (m) => `${who(m.invitation.inviter)} invites you to party ${shortId(m.invitation.party.partyId)}, until ${timeOfDay(m.invitation.expiresAt)}`,
  partyInvitationSent: (m) => `party ${shortId(m.partyId)}: ${who(m.inviter)} invited ${m.invitee}, until ${timeOfDay(m.expiresAt)}`,
  partyInvitationRejected: (m) => `party ${shortId(m.partyId)}: ${m.invitee} rejected the invitation`,
  partyInvitationEnded: (m) => `party ${shortId(m.partyId)}: ${m.invitee}'s invitation ended: ${spaced(m.reason)}`,
  partySnapshot: (m) => snapshot(m.party),
};

/** The summary of any server message. */
export function summarize(message: Inbound): string {
  const summary = (SUMMARIES as Record<string, ((m: Inbound) => string) | undefined>)[message.type];
  if (summary !== undefined) return summary(message);
  const { type: _type, ...body } = message;
  return toJson(body).replace(/\s+/g, ' ');
}

export class EventLog {
  readonly #list: HTMLOListElement;
  #filter = '';

  constructor(list: HTMLOListElement, filter: HTMLInputElement, clear: HTMLButtonElement) {
    this.#list = list;
    filter.addEventListener('input', () => {
      this.#filter = filter.value.trim().toLowerCase();
      for (const item of Array.from(this.#list.children) as HTMLElement[]) item.hidden = !this.#matches(item);
    });
    clear.addEventListener('click', () => this.#list.replaceChildren());
  }

  /** Adds a line; `detail`, when given, is shown as JSON behind a toggle. */
  add(kind: EntryKind, type: string, text: string, detail?: unknown): void {
    const atBottom = this.#list.scrollTop + this.#list.clientHeight >= this.#list.scrollHeight - 8;
    const item = h(
      'li',
      { class: kind, data: { type } },
      h('time', { text: clock(new Date()) }),
      h('span', { class: 'dir', text: ARROWS[kind], attrs: { 'aria-label': kind } }),
      h('span', { class: 'text' }, h('span', { class: 'type', text: type }), text === '' ? '' : ` ${text}`),
      detail === undefined ? null : h('details', {}, h('summary', { text: 'json' }), h('pre', { text: toJson(detail) })),
    );
    item.hidden = !this.#matches(item);
    this.#list.append(item);
    while (this.#list.childElementCount > ENTRIES_MAX) this.#list.firstElementChild?.remove();
    // Follow new lines unless the reader scrolled up to look at older ones.
    if (atBottom) this.#list.scrollTop = this.#list.scrollHeight;
  }

  #matches(item: HTMLElement): boolean {
    return this.#filter === '' || (item.textContent ?? '').toLowerCase().includes(this.#filter);
  }
}

function clock(date: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}.${String(date.getMilliseconds()).padStart(3, '0')}`;
}
