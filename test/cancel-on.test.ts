// cancelOn, the race of a mail's work against its cancellation, on RxJS
// virtual time (TestScheduler marbles: one character is one frame).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TestScheduler } from 'rxjs/testing';
import { cancelOn } from '../src/operators/cancel-on.js';

const scheduler = (): TestScheduler => new TestScheduler((actual, expected) => assert.deepEqual(actual, expected));
const canceled = (cause: string): string => `canceled by ${cause}`;

describe('cancelOn', () => {
  it("emits the source's first value and completes, unsubscribing from both", () => {
    scheduler().run(({ cold, hot, expectObservable, expectSubscriptions }) => {
      const source = cold('--a--b|');
      const cancel = hot('-------c');
      expectObservable(source.pipe(cancelOn(cancel, canceled))).toBe('--(a|)');
      expectSubscriptions(source.subscriptions).toBe('^-!');
      expectSubscriptions(cancel.subscriptions).toBe('^-!');
    });
  });

  it('emits what `canceled` makes of the cancellation when it comes first, and abandons the source', () => {
    scheduler().run(({ cold, hot, expectObservable, expectSubscriptions }) => {
      const source = cold('-----a|');
      const cancel = hot('--x-y', { x: 'the client', y: 'shutdown' });
      expectObservable(source.pipe(cancelOn(cancel, canceled))).toBe('--(z|)', { z: 'canceled by the client' });
      expectSubscriptions(source.subscriptions).toBe('^-!');
    });
  });

  it('lets a source that answers at once win over a cancellation that is already there', () => {
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('a|');
      const cancel = cold('x');
      expectObservable(source.pipe(cancelOn(cancel, canceled))).toBe('(a|)');
      // the source answered during subscription: cancel$ is never subscribed
      assert.deepEqual(cancel.subscriptions, []);
    });
  });

  it('completes empty with a source that completes empty, and errors with it', () => {
    scheduler().run(({ cold, hot, expectObservable }) => {
      expectObservable(cold<string>('---|').pipe(cancelOn(hot<string>('-----c'), canceled))).toBe('---|');
      expectObservable(cold<string>('--#', undefined, new Error('relay broke')).pipe(cancelOn(hot<string>('-----c'), canceled))).toBe('--#', undefined, new Error('relay broke'));
    });
  });
});
