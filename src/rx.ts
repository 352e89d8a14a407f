// The part of RxJS that qrelay uses, each name from its own module of the
// package.  `import … from 'rxjs'` makes Node load the whole package (its
// CommonJS index requires all 233 files, about 0.7 MB of an idle daemon);
// these paths reach about 135.  src/ imports RxJS only through this file
// (test/architecture.test.ts); a name missing here is added here.
//
// In dist/ this file is those modules bundled into one (scripts/build.mjs):
// Node's loader costs memory for every file it loads, about 0.25 MB of an
// idle daemon for these 135 (docs/limits.md, "Memory").  The tests run the
// sources, where the names are the very objects 'rxjs' exports (the same
// files), so tests that import 'rxjs' directly share them with src/.
export { AsyncSubject } from 'rxjs/internal/AsyncSubject';
export { BehaviorSubject } from 'rxjs/internal/BehaviorSubject';
export { Observable } from 'rxjs/internal/Observable';
export { ReplaySubject } from 'rxjs/internal/ReplaySubject';
export { Subject } from 'rxjs/internal/Subject';
export { Subscription } from 'rxjs/internal/Subscription';
export { firstValueFrom } from 'rxjs/internal/firstValueFrom';
export { concat } from 'rxjs/internal/observable/concat';
export { defer } from 'rxjs/internal/observable/defer';
export { EMPTY } from 'rxjs/internal/observable/empty';
export { forkJoin } from 'rxjs/internal/observable/forkJoin';
export { from } from 'rxjs/internal/observable/from';
export { fromEvent } from 'rxjs/internal/observable/fromEvent';
export { interval } from 'rxjs/internal/observable/interval';
export { merge } from 'rxjs/internal/observable/merge';
export { of } from 'rxjs/internal/observable/of';
export { throwError } from 'rxjs/internal/observable/throwError';
export { timer } from 'rxjs/internal/observable/timer';
export { catchError } from 'rxjs/internal/operators/catchError';
export { concatMap } from 'rxjs/internal/operators/concatMap';
export { filter } from 'rxjs/internal/operators/filter';
export { finalize } from 'rxjs/internal/operators/finalize';
export { ignoreElements } from 'rxjs/internal/operators/ignoreElements';
export { last } from 'rxjs/internal/operators/last';
export { map } from 'rxjs/internal/operators/map';
export { mergeMap } from 'rxjs/internal/operators/mergeMap';
export { reduce } from 'rxjs/internal/operators/reduce';
export { switchMap } from 'rxjs/internal/operators/switchMap';
export { take } from 'rxjs/internal/operators/take';
export { takeUntil } from 'rxjs/internal/operators/takeUntil';
export { takeWhile } from 'rxjs/internal/operators/takeWhile';
export { tap } from 'rxjs/internal/operators/tap';
export { throttle } from 'rxjs/internal/operators/throttle';
export { throwIfEmpty } from 'rxjs/internal/operators/throwIfEmpty';
export { timeout } from 'rxjs/internal/operators/timeout';
export type { Subscriber } from 'rxjs/internal/Subscriber';
export type { MonoTypeOperatorFunction, OperatorFunction } from 'rxjs/internal/types';
