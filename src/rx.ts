// The part of RxJS that qrelay uses, each name from its own module of the
// package.  `import … from 'rxjs'` makes Node load the whole package (its
// CommonJS index requires all 233 files, about 0.7 MB of an idle daemon);
// these paths load about 135.  The names, types and objects are the very
// ones 'rxjs' exports (the same files), so code and tests that import
// 'rxjs' directly share them.  src/ imports RxJS only through this file
// (test/architecture.test.ts); a name missing here is added here.
//
// The modules are CommonJS, loaded with `require` rather than `import`, as
// are koffi and wasmoon: Node scans the text of every CommonJS file that an
// ES module imports with its export lexer (JavaScript that gets hot enough
// at startup for V8 to optimise it), which cost an idle daemon about 0.5 MB
// (docs/limits.md, "Memory"; test/lazy-modules.test.ts checks that the
// lexer is not loaded).  `require` gives the very objects `import` would.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export const { AsyncSubject } = require('rxjs/internal/AsyncSubject') as typeof import('rxjs/internal/AsyncSubject');
export type AsyncSubject<T> = import('rxjs/internal/AsyncSubject').AsyncSubject<T>;
export const { BehaviorSubject } = require('rxjs/internal/BehaviorSubject') as typeof import('rxjs/internal/BehaviorSubject');
export type BehaviorSubject<T> = import('rxjs/internal/BehaviorSubject').BehaviorSubject<T>;
export const { Observable } = require('rxjs/internal/Observable') as typeof import('rxjs/internal/Observable');
export type Observable<T> = import('rxjs/internal/Observable').Observable<T>;
export const { ReplaySubject } = require('rxjs/internal/ReplaySubject') as typeof import('rxjs/internal/ReplaySubject');
export type ReplaySubject<T> = import('rxjs/internal/ReplaySubject').ReplaySubject<T>;
export const { Subject } = require('rxjs/internal/Subject') as typeof import('rxjs/internal/Subject');
export type Subject<T> = import('rxjs/internal/Subject').Subject<T>;
export const { Subscription } = require('rxjs/internal/Subscription') as typeof import('rxjs/internal/Subscription');
export type Subscription = import('rxjs/internal/Subscription').Subscription;
export const { firstValueFrom } = require('rxjs/internal/firstValueFrom') as typeof import('rxjs/internal/firstValueFrom');
export const { concat } = require('rxjs/internal/observable/concat') as typeof import('rxjs/internal/observable/concat');
export const { defer } = require('rxjs/internal/observable/defer') as typeof import('rxjs/internal/observable/defer');
export const { EMPTY } = require('rxjs/internal/observable/empty') as typeof import('rxjs/internal/observable/empty');
export const { forkJoin } = require('rxjs/internal/observable/forkJoin') as typeof import('rxjs/internal/observable/forkJoin');
export const { from } = require('rxjs/internal/observable/from') as typeof import('rxjs/internal/observable/from');
export const { fromEvent } = require('rxjs/internal/observable/fromEvent') as typeof import('rxjs/internal/observable/fromEvent');
export const { interval } = require('rxjs/internal/observable/interval') as typeof import('rxjs/internal/observable/interval');
export const { merge } = require('rxjs/internal/observable/merge') as typeof import('rxjs/internal/observable/merge');
export const { of } = require('rxjs/internal/observable/of') as typeof import('rxjs/internal/observable/of');
export const { throwError } = require('rxjs/internal/observable/throwError') as typeof import('rxjs/internal/observable/throwError');
export const { timer } = require('rxjs/internal/observable/timer') as typeof import('rxjs/internal/observable/timer');
export const { catchError } = require('rxjs/internal/operators/catchError') as typeof import('rxjs/internal/operators/catchError');
export const { concatMap } = require('rxjs/internal/operators/concatMap') as typeof import('rxjs/internal/operators/concatMap');
export const { filter } = require('rxjs/internal/operators/filter') as typeof import('rxjs/internal/operators/filter');
export const { finalize } = require('rxjs/internal/operators/finalize') as typeof import('rxjs/internal/operators/finalize');
export const { ignoreElements } = require('rxjs/internal/operators/ignoreElements') as typeof import('rxjs/internal/operators/ignoreElements');
export const { last } = require('rxjs/internal/operators/last') as typeof import('rxjs/internal/operators/last');
export const { map } = require('rxjs/internal/operators/map') as typeof import('rxjs/internal/operators/map');
export const { mergeMap } = require('rxjs/internal/operators/mergeMap') as typeof import('rxjs/internal/operators/mergeMap');
export const { reduce } = require('rxjs/internal/operators/reduce') as typeof import('rxjs/internal/operators/reduce');
export const { switchMap } = require('rxjs/internal/operators/switchMap') as typeof import('rxjs/internal/operators/switchMap');
export const { take } = require('rxjs/internal/operators/take') as typeof import('rxjs/internal/operators/take');
export const { takeUntil } = require('rxjs/internal/operators/takeUntil') as typeof import('rxjs/internal/operators/takeUntil');
export const { takeWhile } = require('rxjs/internal/operators/takeWhile') as typeof import('rxjs/internal/operators/takeWhile');
export const { tap } = require('rxjs/internal/operators/tap') as typeof import('rxjs/internal/operators/tap');
export const { throttle } = require('rxjs/internal/operators/throttle') as typeof import('rxjs/internal/operators/throttle');
export const { throwIfEmpty } = require('rxjs/internal/operators/throwIfEmpty') as typeof import('rxjs/internal/operators/throwIfEmpty');
export const { timeout } = require('rxjs/internal/operators/timeout') as typeof import('rxjs/internal/operators/timeout');
export type { Subscriber } from 'rxjs/internal/Subscriber';
export type { MonoTypeOperatorFunction, OperatorFunction } from 'rxjs/internal/types';
