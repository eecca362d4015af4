// What this session sees of the lobby: its parties (members with the leader marked, pending join
// requests, settings), its followed users' statuses, and the last search. Replies and events
// update the state; each change redraws the part it touched.

import type { Inbound, Party, PartySearchArgs, Presence, RequestArgs, RequestName, RequestReply, StatusPresence } from '../src/index.js';
import { button, h } from './dom.js';
import { errorText, shortId, who } from './format.js';

/** What the lobby needs from the connection: logged requests and the session's own presence. */
export interface Session {
  request<K extends RequestName>(name: K, args: RequestArgs<K>): Promise<RequestReply<K>>;
  me(): Presence | null;
}

interface PartyView {
  partyId: string;
  /** Asked to join a closed party; the leader has not answered yet. */
  pending: boolean;
  open: boolean;
  hidden: boolean;
  maxSize: number;
  label: string;
  leader: Presence | null;
  members: Presence[];
  /** Join requests (seen by the leader). */
  requests: Presence[];
}

export interface LobbyElements {
  parties: HTMLElement;
  notices: HTMLElement;
  results: HTMLElement;
  following: HTMLElement;
}

/** What a `partyRemoved` reason means to the removed session. */
const REMOVED: Record<string, string> = {
  Kicked: 'you were kicked by the leader',
  Closed: 'the leader closed it',
  Rejected: 'the leader rejected your join request',
};

const sameSession = (a: Presence, b: Presence) => a.sessionId === b.sessionId;

export class Lobby {
  readonly #session: Session;
  readonly #el: LobbyElements;
  readonly #parties = new Map<string, PartyView>();
  readonly #following = new Map<string, StatusPresence>();
  /** The party the party forms act on by default. */
  #current: string | null = null;
  /** Called when the set of parties changes (the forms' party pickers follow it). */
  onPartiesChanged: () => void = () => {};

  constructor(session: Session, elements: LobbyElements) {
    this.#session = session;
    this.#el = elements;
  }

  get partyIds(): string[] {
    return [...this.#parties.keys()];
  }

  get current(): string | null {
    return this.#current;
  }

  /** A party from a reply (create, join, get) or a `partyJoined` event. */
  upsert(party: Party): void {
    const known = this.#parties.get(party.partyId);
    this.#parties.set(party.partyId, {
      partyId: party.partyId,
      pending: false,
      open: party.open,
      hidden: party.hidden,
      maxSize: party.maxSize,
      label: party.label,
      leader: party.leader,
      members: party.members,
      requests: known?.requests ?? [],
    });
    this.#current ??= party.partyId;
    if (known === undefined || known.pending) this.#current = party.partyId;
    this.#partiesChanged();
  }

  /** Joins by id: an open party at once, a closed one once its leader accepts. */
  async join(partyId: string): Promise<RequestReply<'partyJoin'>> {
    const reply = await this.#session.request('partyJoin', { partyId });
    if (reply.type === 'partyInfo') this.upsert(reply);
    else this.#pending(reply.partyId);
    return reply;
  }

  /** After leaving or closing. */
  forget(partyId: string, why: string): void {
    if (this.#parties.delete(partyId)) this.notice(`Left party ${shortId(partyId)}: ${why}.`, 'info');
    this.#partiesChanged();
  }

  /** Search results with a Join button each. */
  showSearch(args: PartySearchArgs, result: RequestReply<'partySearch'>): void {
    const caption = `${result.parties.length} ${result.parties.length === 1 ? 'party' : 'parties'} for ${args.query ? `“${args.query}”` : 'every party'}${result.cursor === null ? '' : ' (more pages: search with the cursor)'}`;
    if (result.parties.length === 0) {
      this.#el.results.replaceChildren(h('p', { class: 'empty', text: caption }));
      return;
    }
    const rows = result.parties.map((p) =>
      h(
        'tr',
        { data: { partyId: p.partyId } },
        h('td', { class: 'mono', text: shortId(p.partyId), title: p.partyId }),
        h('td', { text: p.open ? 'open' : 'closed' }),
        h('td', { text: `${p.memberCount}/${p.maxSize}` }),
        h('td', { class: 'label', text: p.label || '—' }),
        h('td', {}, button('Join', () => this.#act(this.#el.results, () => this.join(p.partyId)), 'small', { action: 'join' })),
      ),
    );
    this.#el.results.replaceChildren(
      h('p', { class: 'muted', text: caption }),
      h('table', { class: 'results' }, h('thead', {}, h('tr', {}, ...['party', '', 'members', 'label', ''].map((t) => h('th', { text: t })))), h('tbody', {}, ...rows)),
    );
  }

  /** The reply to a follow: the followed users' sessions and statuses now. */
  followed(presences: StatusPresence[]): void {
    for (const p of presences) this.#following.set(key(p.presence), p);
    this.#renderFollowing();
  }

  unfollowed(userIds: string[]): void {
    for (const [k, p] of this.#following) if (userIds.includes(p.presence.userId)) this.#following.delete(k);
    this.#renderFollowing();
  }

  /** A new session (a reconnect): the server dropped its parties and follows (SPEC C-6). */
  reset(): void {
    if (this.#parties.size > 0 || this.#following.size > 0) {
      this.notice('New session: the server removed the old one from its parties and dropped its follows.', 'info');
    }
    this.#parties.clear();
    this.#following.clear();
    this.#current = null;
    this.#partiesChanged();
    this.#renderFollowing();
  }

  /** Server events that change what the lobby shows. */
  apply(message: Inbound): void {
    switch (message.type) {
      case 'partyPresence':
        return this.#update(message.partyId, (p) => {
          p.members = [...p.members.filter((m) => !message.leaves.some((l) => sameSession(l, m))), ...message.joins.filter((j) => !p.members.some((m) => sameSession(m, j)))];
          p.requests = p.requests.filter((r) => !message.joins.some((j) => sameSession(j, r)) && !message.leaves.some((l) => sameSession(l, r)));
        });
      case 'partyLeader':
        return this.#update(message.partyId, (p) => (p.leader = message.leader));
      case 'partyUpdated':
        return this.#update(message.partyId, (p) => Object.assign(p, { open: message.open, hidden: message.hidden, maxSize: message.maxSize, label: message.label }));
      case 'partyJoinRequest':
        return this.#update(message.partyId, (p) => (p.requests = [...p.requests, ...message.presences.filter((n) => !p.requests.some((r) => sameSession(r, n)))]));
      case 'partyJoined':
        return this.upsert(message.party);
      case 'partyRemoved':
        this.#parties.delete(message.partyId);
        this.notice(`Removed from party ${shortId(message.partyId)}: ${REMOVED[message.reason] ?? message.reason}.`, 'bad', { removed: message.reason });
        return this.#partiesChanged();
      case 'statusPresenceEvent':
        for (const p of message.leaves) this.#following.delete(key(p.presence));
        for (const p of message.joins) this.#following.set(key(p.presence), p);
        return this.#renderFollowing();
      default:
        return;
    }
  }

  /** A line above the parties until dismissed. */
  notice(text: string, tone: 'info' | 'bad', data: Record<string, string> = {}): void {
    const item = h('div', { class: tone === 'info' ? 'notice info' : 'notice', data }, h('span', { text }));
    item.append(button('×', () => item.remove(), 'secondary small'));
    this.#el.notices.append(item);
    while (this.#el.notices.childElementCount > 5) this.#el.notices.firstElementChild?.remove();
  }

  select(partyId: string): void {
    this.#current = partyId;
    this.#partiesChanged();
  }

  #pending(partyId: string): void {
    if (this.#parties.has(partyId)) return;
    this.#parties.set(partyId, { partyId, pending: true, open: false, hidden: false, maxSize: 0, label: '', leader: null, members: [], requests: [] });
    this.#partiesChanged();
  }

  #update(partyId: string, change: (party: PartyView) => void): void {
    const party = this.#parties.get(partyId);
    if (party === undefined) return;
    change(party);
    this.#renderParties();
  }

  #partiesChanged(): void {
    if (this.#current !== null && !this.#parties.has(this.#current)) this.#current = this.#parties.keys().next().value ?? null;
    this.#renderParties();
    this.onPartiesChanged();
  }

  /** Runs a card's button action; a failure is shown in `where`'s error line. */
  async #act(where: HTMLElement, action: () => Promise<unknown>): Promise<void> {
    const output = where.querySelector<HTMLOutputElement>(':scope > output.result') ?? where.appendChild(h('output', { class: 'result error' }));
    output.textContent = '';
    try {
      await action();
    } catch (error) {
      output.className = 'result error';
      output.textContent = errorText(error);
    }
  }

  #renderParties(): void {
    if (this.#parties.size === 0) {
      this.#el.parties.replaceChildren(h('p', { class: 'empty', text: 'Not in a party. Create one or join one.' }));
      return;
    }
    this.#el.parties.replaceChildren(...[...this.#parties.values()].map((p) => this.#card(p)));
  }

  #card(p: PartyView): HTMLElement {
    const me = this.#session.me();
    const leading = me !== null && p.leader !== null && sameSession(p.leader, me);
    const card = h('article', { class: p.partyId === this.#current ? 'party current' : 'party', data: { partyId: p.partyId } });
    const act = (action: () => Promise<unknown>) => () => this.#act(card, action);
    const request = this.#session.request.bind(this.#session);

    card.append(
      h(
        'div',
        { class: 'party-head' },
        h('h3', { text: p.label ? `Party ${labelTitle(p.label)}` : 'Party' }),
        h('span', { class: 'party-id', text: p.partyId, attrs: { 'aria-label': 'party id' } }),
      ),
      h(
        'div',
        { class: 'tags' },
        p.pending ? h('span', { class: 'badge pending', text: 'join requested: waiting for the leader' }) : null,
        p.pending ? null : h('span', { class: p.open ? 'tag on' : 'tag', text: p.open ? 'open' : 'closed' }),
        p.hidden ? h('span', { class: 'tag', text: 'hidden' }) : null,
        p.pending ? null : h('span', { class: 'tag', text: `${p.members.length}/${p.maxSize} members` }),
        p.partyId === this.#current ? h('span', { class: 'tag on', text: 'selected in the forms' }) : null,
      ),
    );
    if (!p.pending) {
      card.append(
        h(
          'dl',
          { class: 'facts' },
          h('dt', { text: 'label' }),
          h('dd', { class: 'mono', text: p.label || '—' }),
          h('dt', { text: 'code' }),
          h('dd', { class: 'slot', data: { slot: 'party-code' }, text: 'slot: party codes arrive with Lobby I (SPEC L-3)' }),
        ),
        h(
          'ul',
          { class: 'plain members', attrs: { 'aria-label': 'members' } },
          ...p.members.map((m) => {
            const isLeader = p.leader !== null && sameSession(m, p.leader);
            const isMe = me !== null && sameSession(m, me);
            return h(
              'li',
              { data: { userId: m.userId, sessionId: String(m.sessionId) } },
              h('span', { class: 'who' }, who(m), ' ', h('small', { text: `#${m.sessionId}` })),
              isLeader ? h('span', { class: 'badge leader', text: '★ leader' }) : null,
              isMe ? h('span', { class: 'badge you', text: 'you' }) : null,
              leading && !isMe ? button('Promote', act(() => request('partyPromote', { partyId: p.partyId, presence: m })), 'secondary small', { action: 'promote' }) : null,
              leading && !isMe ? button('Kick', act(() => request('partyRemove', { partyId: p.partyId, presence: m })), 'danger small', { action: 'kick' }) : null,
            );
          }),
        ),
      );
    }
    if (p.requests.length > 0) {
      card.append(
        h('h3', { text: 'Join requests' }),
        h(
          'ul',
          { class: 'plain requests' },
          ...p.requests.map((r) =>
            h(
              'li',
              { data: { userId: r.userId } },
              h('span', { class: 'who', text: who(r) }),
              button('Accept', act(() => request('partyAccept', { partyId: p.partyId, presence: r })), 'small', { action: 'accept' }),
              button('Reject', act(() => request('partyRemove', { partyId: p.partyId, presence: r })), 'danger small', { action: 'reject' }),
            ),
          ),
        ),
      );
    }
    card.append(
      h(
        'div',
        { class: 'buttons' },
        p.partyId === this.#current ? null : button('Select', () => this.select(p.partyId), 'secondary small', { action: 'select' }),
        p.pending ? null : button('Refresh', act(async () => this.upsert(await request('partyGet', { partyId: p.partyId }))), 'secondary small', { action: 'refresh' }),
        leading && !p.open
          ? button('Join requests', act(async () => {
              const list = await request('partyJoinRequestListGet', { partyId: p.partyId });
              this.#update(p.partyId, (view) => (view.requests = list.presences));
            }), 'secondary small', { action: 'requests' })
          : null,
        button('Leave', act(async () => {
          await request('partyLeave', { partyId: p.partyId });
          this.forget(p.partyId, 'you left');
        }), 'secondary small', { action: 'leave' }),
        leading
          ? button('Close', act(async () => {
              await request('partyClose', { partyId: p.partyId });
              this.forget(p.partyId, 'you closed it');
            }), 'danger small', { action: 'close' })
          : null,
      ),
    );
    return card;
  }

  #renderFollowing(): void {
    const me = this.#session.me();
    const items = [...this.#following.values()].map((p) =>
      h(
        'li',
        { data: { userId: p.presence.userId } },
        h('span', { class: 'who' }, who(p.presence), ' ', h('small', { text: `#${p.presence.sessionId}` })),
        me !== null && sameSession(me, p.presence) ? h('span', { class: 'badge you', text: 'you' }) : null,
        h('span', { class: 'status', text: p.status === '' ? 'online' : `“${p.status}”` }),
      ),
    );
    this.#el.following.replaceChildren(...(items.length > 0 ? items : [h('li', { class: 'empty', text: 'Nobody followed.' })]));
  }
}

function key(p: Presence): string {
  return `${p.userId}\u0000${p.sessionId}`;
}

/** A short title from a JSON label: its values, e.g. `ctf · eu`. */
function labelTitle(label: string): string {
  try {
    const parsed: unknown = JSON.parse(label);
    if (parsed !== null && typeof parsed === 'object') {
      const values = Object.values(parsed as Record<string, unknown>).filter((v) => typeof v !== 'object');
      if (values.length > 0) return values.slice(0, 3).map(String).join(' · ');
    }
  } catch {
    // not JSON: the label itself
  }
  return label.length > 24 ? label.slice(0, 24) + '…' : label;
}
