// Reads one YAML document (JSON is YAML) into YamlDotNet's node types from the low-level event parser, holding
// RecipeLimits while it reads, so a hostile document is refused before anything interprets it.
//
// YamlDotNet's RepresentationModel (YamlStream) builds nodes by recursion, resolves a recursive alias
// (`w: &r [{value: *r}]`) into a cyclic graph, and shares aliased nodes so a few hundred bytes can stand for
// billions of nodes ("billion laughs"); whatever then walks the tree overflows the stack or runs out of memory, and
// a stack overflow cannot be caught in .NET. Here the events (YamlDotNet.Core.Parser, a state machine with no
// recursion) are folded into nodes with an explicit stack, and:
//   - collections may nest at most RecipeLimits.MaxDepth deep, counting where an alias expands to;
//   - the document may hold at most RecipeLimits.MaxNodes nodes after alias expansion: an alias costs its anchor's
//     whole subtree, so an alias bomb stops at the budget, while the tree itself stays a DAG of shared nodes;
//   - an alias to an anchor whose collection is still open (a recursive alias) is refused;
//   - scalars are at most RecipeLimits.MaxScalarChars long (a top-level chat_template MaxChatTemplateChars); mapping keys must be scalars, each given once.
// Every refusal is a one-line CloudSoupException naming the field where it happened, with the line and column.
// Anchors and aliases follow the YAML 1.2 spec (https://yaml.org/spec/1.2.2/#3222-anchors-and-aliases): an alias
// refers to the most recent node with that anchor before it.
using System.Text;
using CloudSoup.Control.Errors;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace CloudSoup.Control.Recipes;

internal static class BoundedYaml
{
    /// <summary>The root node of the only document in <paramref name="text"/>; null when there is none.</summary>
    public static YamlNode? Load(string text) => new Reader().Read(text);

    /// <summary>A collection being read: its node, where the next child goes, and the expanded size and height so far.</summary>
    private sealed class Open(YamlNode node, string? anchor)
    {
        public YamlNode Node { get; } = node;
        public string? Anchor { get; } = anchor;
        /// <summary>Nodes in the expanded subtree, this one included.</summary>
        public long Size { get; set; } = 1;
        /// <summary>Collection levels in the expanded subtree, this one included.</summary>
        public int Height { get; set; } = 1;
        public int Index { get; set; }
        /// <summary>For a mapping: the key read, waiting for its value.</summary>
        public YamlScalarNode? PendingKey { get; set; }
        public HashSet<string>? Keys { get; set; }
    }

    /// <summary>A finished node an alias can refer to, with its expanded size and height (0 for a scalar).</summary>
    private readonly record struct Anchored(YamlNode Node, long Size, int Height);

    private sealed class Reader
    {
        private readonly Stack<Open> _open = new();
        // An anchor maps to its finished node, or to the collection still being read (then an alias to it is recursive).
        private readonly Dictionary<string, Anchored> _done = new(StringComparer.Ordinal);
        private readonly Dictionary<string, Open> _reading = new(StringComparer.Ordinal);
        private long _nodes;
        private YamlNode? _root;
        // Where the event being handled starts (for refusals) and where the last one read ended (for scanner failures).
        private Mark _at = Mark.Empty, _after = Mark.Empty;

        public YamlNode? Read(string text)
        {
            var parser = new Parser(new StringReader(text));
            int documents = 0;
            while (Next(parser))
            {
                var e = parser.Current!;
                (_at, _after) = (e.Start, e.End);
                switch (e)
                {
                    case DocumentStart:
                        if (++documents > 1) throw Refuse("recipe", "holds more than one YAML document");
                        break;
                    case Scalar s:
                        Count(1);
                        if (s.Value.Length > RecipeLimits.MaxScalarChars && s.Value.Length > RecipeLimits.MaxScalarCharsAt(ChildPath()))
                            throw Refuse(ChildPath(), $"is {s.Value.Length} characters long; at most {RecipeLimits.MaxScalarCharsAt(ChildPath())} are allowed");
                        var scalar = new YamlScalarNode(s.Value) { Style = s.Style };
                        Remember(s.Anchor, new Anchored(scalar, 1, 0));
                        Attach(scalar, 1, 0);
                        break;
                    case SequenceStart q:
                        Begin(new YamlSequenceNode(), q.Anchor);
                        break;
                    case MappingStart m:
                        Begin(new YamlMappingNode(), m.Anchor);
                        break;
                    case SequenceEnd or MappingEnd:
                        End();
                        break;
                    case AnchorAlias a:
                        Alias(a.Value.Value);
                        break;
                }
            }
            return _root;
        }

        /// <summary>The parser's next event; any failure of the scanner or parser is a one-line syntax error.</summary>
        private bool Next(Parser parser)
        {
            try
            {
                return parser.MoveNext();
            }
            catch (YamlException e)
            {
                throw Refuse("recipe", $"is not valid YAML or JSON (line {e.Start.Line}, column {e.Start.Column}: {FirstLine(e.Message)})", at: false);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException or OverflowException or IndexOutOfRangeException)
            {
                // YamlDotNet lets a few malformed inputs escape as other exceptions, e.g. a "\UFFFFFFFF" escape
                // (Char.ConvertFromUtf32 throws ArgumentOutOfRangeException); they are syntax errors all the same.
                throw Refuse("recipe", $"is not valid YAML or JSON (after line {_after.Line}, column {_after.Column}: unreadable text, such as an escape sequence outside Unicode)", at: false);
            }
        }

        private void Begin(YamlNode node, AnchorName anchor)
        {
            Count(1);
            if (_open.Count + 1 > RecipeLimits.MaxDepth)
                throw Refuse(ChildPath(), $"nests deeper than {RecipeLimits.MaxDepth} levels");
            var open = new Open(node, anchor.IsEmpty ? null : anchor.Value);
            if (node is YamlMappingNode) open.Keys = new HashSet<string>(StringComparer.Ordinal);
            _open.Push(open);
            if (open.Anchor != null)
            {
                _done.Remove(open.Anchor);
                _reading[open.Anchor] = open;
            }
        }

        private void End()
        {
            var open = _open.Pop();
            if (open.Anchor != null && _reading.TryGetValue(open.Anchor, out var current) && ReferenceEquals(current, open))
            {
                _reading.Remove(open.Anchor);
                _done[open.Anchor] = new Anchored(open.Node, open.Size, open.Height);
            }
            Attach(open.Node, open.Size, open.Height);
        }

        private void Alias(string anchor)
        {
            if (_reading.ContainsKey(anchor))
                throw Refuse(ChildPath(), "is an alias to a collection that contains it (a recursive alias)");
            if (!_done.TryGetValue(anchor, out var target))
                throw Refuse(ChildPath(), "is an alias to an anchor not defined before it");
            if (_open.Count + target.Height > RecipeLimits.MaxDepth)
                throw Refuse(ChildPath(), $"nests deeper than {RecipeLimits.MaxDepth} levels once its alias is expanded");
            Count(target.Size);
            Attach(target.Node, target.Size, target.Height);
        }

        private void Remember(AnchorName anchor, Anchored node)
        {
            if (anchor.IsEmpty) return;
            _reading.Remove(anchor.Value);
            _done[anchor.Value] = node;
        }

        private void Count(long nodes)
        {
            _nodes += nodes;
            if (_nodes > RecipeLimits.MaxNodes)
                throw Refuse(ChildPath(), $"the recipe holds more than {RecipeLimits.MaxNodes} YAML nodes once aliases are expanded");
        }

        /// <summary>Adds a finished node to the collection being read (as a key, a value or an item), or makes it the root.</summary>
        private void Attach(YamlNode node, long size, int height)
        {
            if (_open.Count == 0)
            {
                _root = node;
                return;
            }
            var parent = _open.Peek();
            parent.Size += size;
            parent.Height = Math.Max(parent.Height, height + 1);
            switch (parent.Node)
            {
                case YamlSequenceNode seq:
                    seq.Add(node);
                    parent.Index++;
                    break;
                case YamlMappingNode when parent.PendingKey is null:
                    if (node is not YamlScalarNode key) throw Refuse(ChildPath(), "has a key that is not a plain name");
                    string name = key.Value ?? "";
                    if (!parent.Keys!.Add(name))
                        throw Refuse(ChildPath() is var at && at != "recipe" ? $"{at}.{ErrorText.Field(name)}" : ErrorText.Field(name), "is given twice");
                    parent.PendingKey = key;
                    break;
                case YamlMappingNode map:
                    map.Add(parent.PendingKey, node);
                    parent.PendingKey = null;
                    break;
            }
        }

        /// <summary>
        /// The field the node being read belongs to, e.g. models[2].parameters.weight: each open sequence adds the
        /// index of the item being read, each open mapping the key whose value is being read (none while a key is read).
        /// </summary>
        private string ChildPath()
        {
            var path = new StringBuilder();
            foreach (var o in _open.Reverse())
            {
                if (o.Node is YamlSequenceNode) path.Append('[').Append(o.Index).Append(']');
                else if (o.PendingKey?.Value is { } key) path.Append(path.Length > 0 ? "." : "").Append(ErrorText.Field(key));
            }
            return path.Length == 0 ? "recipe" : path.ToString();
        }

        private CloudSoupException Refuse(string field, string message, bool at = true) =>
            CloudSoupException.Recipe(field, at ? $"{message} (line {_at.Line}, column {_at.Column})" : message);

        private static string FirstLine(string message) => message.Split('\n')[0].Trim();
    }
}
