// The PromQL editor: CodeMirror 6 with the Prometheus project's own PromQL language package for
// highlighting, linting and completion of metric names, label names and values from the querier's API.

import {
  autocompletion,
  closeBrackets,
  closeBracketsKeymap,
  completionKeymap,
  completionStatus,
} from '@codemirror/autocomplete';
import { defaultKeymap, history, historyKeymap, insertNewlineAndIndent } from '@codemirror/commands';
import { bracketMatching, defaultHighlightStyle, syntaxHighlighting } from '@codemirror/language';
import { lintKeymap } from '@codemirror/lint';
import { EditorSelection, EditorState, Prec } from '@codemirror/state';
import { EditorView, highlightSpecialChars, keymap, placeholder } from '@codemirror/view';
import { PromQLExtension } from '@prometheus-io/codemirror-promql';

import { apiBase } from './api';

export interface PromQLEditor {
  view: EditorView;
  value(): string;
  setValue(text: string): void;
  /** Puts the cursor at a 1-based line and column (where a parse error points). */
  focusAt(line: number, column: number): void;
}

export function createEditor(parent: HTMLElement, initial: string, onExecute: () => void): PromQLEditor {
  const promql = new PromQLExtension().setComplete({
    remote: {
      url: apiBase(),
      // Completion must never break the page: an API error only means fewer suggestions.
      httpErrorHandler: (error: unknown) => console.warn('completion request failed', error),
      cache: { maxAge: 5 * 60 * 1000 },
    },
    maxMetricsMetadata: 10000,
  });

  // Enter runs the query, except while the completion list is open: then it picks the suggestion.
  const run = (view: EditorView) => {
    if (completionStatus(view.state) === 'active') return false;
    onExecute();
    return true;
  };

  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: initial,
      extensions: [
        highlightSpecialChars(),
        history(),
        bracketMatching(),
        closeBrackets(),
        autocompletion({ activateOnTyping: true }),
        syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
        placeholder('Expression (press Shift+Enter for newlines)'),
        EditorView.lineWrapping,
        promql.asExtension(),
        Prec.highest(
          keymap.of([
            { key: 'Enter', run },
            { key: 'Shift-Enter', run: insertNewlineAndIndent },
            { key: 'Mod-Enter', run },
          ]),
        ),
        keymap.of([...closeBracketsKeymap, ...defaultKeymap, ...historyKeymap, ...completionKeymap, ...lintKeymap]),
        EditorView.contentAttributes.of({ 'aria-label': 'PromQL expression', 'data-testid': 'expr-input' }),
      ],
    }),
  });

  return {
    view,
    value: () => view.state.doc.toString(),
    setValue: (text: string) => view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } }),
    focusAt: (line: number, column: number) => {
      const doc = view.state.doc;
      const l = doc.line(Math.min(Math.max(1, line), doc.lines));
      const pos = Math.min(l.from + Math.max(0, column - 1), l.to);
      view.dispatch({ selection: EditorSelection.cursor(pos), scrollIntoView: true });
      view.focus();
    },
  };
}
