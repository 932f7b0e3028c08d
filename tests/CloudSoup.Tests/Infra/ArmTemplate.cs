using System.Globalization;
using System.Text;
using System.Text.Json;

namespace CloudSoup.Tests.Infra;

/// <summary>A value only known at deployment time: a parameter without a bound value, reference(), listKeys()...</summary>
internal sealed record Unknown(string Why)
{
    /// <summary>How an unknown part shows inside a string built by format() or a resource id function.</summary>
    public const string Marker = "{?}";
    public override string ToString() => Marker;
}

/// <summary>A resource of a compiled template, with one evaluation scope per copy-loop iteration.</summary>
internal sealed record ArmResource(ArmTemplate Template, JsonElement Body)
{
    public string Type => Body.GetProperty("type").GetString()!;
    public string ApiVersion => Body.GetProperty("apiVersion").GetString()!;
    public bool Existing => Body.TryGetProperty("existing", out var e) && e.ValueKind == JsonValueKind.True;

    /// <summary>Copy-loop indexes (a single null when the resource is not in a loop).</summary>
    public IEnumerable<int?> Copies()
    {
        if (!Body.TryGetProperty("copy", out var copy)) return [null];
        var count = Template.Evaluate(copy.GetProperty("count"));
        if (count is not long n) throw new InvalidOperationException($"{Template.Module}: the copy count of {Type} is not known before deployment ({count})");
        return Enumerable.Range(0, (int)n).Select(i => (int?)i);
    }

    /// <summary>The evaluated value at a dotted path under the resource ("properties.siteConfig.appSettings"), or null when absent.</summary>
    public object? Get(string path, int? copyIndex = null)
    {
        var element = Body;
        foreach (var part in path.Split('.'))
        {
            if (element.ValueKind != JsonValueKind.Object || !element.TryGetProperty(part, out element)) return null;
        }
        return Template.Evaluate(element, copyIndex);
    }

    public override string ToString() => $"{Template.Module}: {Type}@{ApiVersion} {Body.GetProperty("name")}";
}

/// <summary>
/// A compiled ARM template (the JSON `bicep build` writes) and a small evaluator for the template language
/// expressions the compiler emits (https://learn.microsoft.com/azure/azure-resource-manager/templates/template-expressions),
/// so tests can check names, settings and role ids as ARM will see them rather than as the .bicep text spells them.
/// Parameters evaluate through <see cref="Parameter"/> (unknown by default); deployment-time functions
/// (reference, list*, uniqueString, subscription...) evaluate to <see cref="Unknown"/>.
/// </summary>
internal sealed class ArmTemplate
{
    private readonly Func<string, object?> parameter;

    public ArmTemplate(string module, JsonElement root, Func<string, object?>? parameter = null)
    {
        Module = module;
        Root = root;
        this.parameter = parameter ?? (name => new Unknown($"parameters('{name}')"));
    }

    public string Module { get; }
    public JsonElement Root { get; }

    /// <summary>The same template with parameters bound by <paramref name="bind"/>.</summary>
    public ArmTemplate WithParameters(Func<string, object?> bind) => new(Module, Root, bind);

    public object? Parameter(string name) => parameter(name);

    public IEnumerable<JsonProperty> Parameters =>
        Root.TryGetProperty("parameters", out var p) ? p.EnumerateObject() : [];

    public IEnumerable<JsonProperty> Outputs =>
        Root.TryGetProperty("outputs", out var o) ? o.EnumerateObject() : [];

    /// <summary>This template's own resources (array form, or the symbolic-name object form).</summary>
    public IEnumerable<ArmResource> Resources
    {
        get
        {
            if (!Root.TryGetProperty("resources", out var resources)) return [];
            var items = resources.ValueKind == JsonValueKind.Array
                ? resources.EnumerateArray()
                : resources.EnumerateObject().Select(p => p.Value);
            return items.Select(r => new ArmResource(this, r)).ToList();
        }
    }

    /// <summary>Nested deployments (Bicep modules) with an inline template, by deployment name.</summary>
    public IEnumerable<ArmTemplate> Modules =>
        Resources.Where(r => r.Type.Equals("Microsoft.Resources/deployments", StringComparison.OrdinalIgnoreCase)
                             && r.Body.TryGetProperty("properties", out var p) && p.TryGetProperty("template", out _))
            .Select(r => new ArmTemplate(Evaluate(r.Body.GetProperty("name")) as string ?? r.Body.GetProperty("name").ToString(),
                r.Body.GetProperty("properties").GetProperty("template")));

    public ArmTemplate ModuleNamed(string name) =>
        Modules.SingleOrDefault(m => m.Module == name) ?? throw new InvalidOperationException($"{Module} has no module (nested deployment) named {name}");

    /// <summary>This template and every nested one, depth first.</summary>
    public IEnumerable<ArmTemplate> AllTemplates => new[] { this }.Concat(Modules.SelectMany(m => m.AllTemplates));

    /// <summary>Every resource declared in this template or a nested one (not the deployments themselves' contents twice).</summary>
    public IEnumerable<ArmResource> AllResources => AllTemplates.SelectMany(t => t.Resources);

    /// <summary>Every string in the template that is an ARM expression ("[...]"), with its parsed form.</summary>
    public IEnumerable<(string Text, ArmExpression.Node Node)> Expressions()
    {
        var found = new List<(string, ArmExpression.Node)>();
        void Walk(JsonElement e)
        {
            switch (e.ValueKind)
            {
                case JsonValueKind.Object:
                    // A nested deployment's template belongs to its module (see Modules), not to this one.
                    bool nested = e.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String
                                  && t.GetString()!.Equals("Microsoft.Resources/deployments", StringComparison.OrdinalIgnoreCase);
                    foreach (var p in e.EnumerateObject())
                    {
                        if (nested && p.Name == "properties" && p.Value.ValueKind == JsonValueKind.Object)
                        {
                            foreach (var q in p.Value.EnumerateObject().Where(q => q.Name != "template")) Walk(q.Value);
                            continue;
                        }
                        Walk(p.Value);
                    }
                    break;
                case JsonValueKind.Array: foreach (var i in e.EnumerateArray()) Walk(i); break;
                case JsonValueKind.String when ArmExpression.IsExpression(e.GetString()!):
                    var text = e.GetString()!;
                    found.Add((text, ArmExpression.Parse(text[1..^1])));
                    break;
            }
        }
        Walk(Root);
        return found;
    }

    /// <summary>Evaluates a JSON value of this template: expressions are evaluated, objects and arrays element-wise.</summary>
    public object? Evaluate(JsonElement value, int? copyIndex = null) => new Scope(this, copyIndex).FromJson(value);

    public object? Variable(string name, int? copyIndex = null) => new Scope(this, copyIndex).Variable(name);

    private sealed class Scope(ArmTemplate template, int? copyIndex)
    {
        public object? FromJson(JsonElement e) => e.ValueKind switch
        {
            JsonValueKind.String when ArmExpression.IsExpression(e.GetString()!) => Eval(ArmExpression.Parse(e.GetString()![1..^1])),
            JsonValueKind.String when e.GetString()!.StartsWith("[[", StringComparison.Ordinal) => e.GetString()![1..],
            JsonValueKind.String => e.GetString(),
            JsonValueKind.Number => e.TryGetInt64(out var l) ? (object)l : e.GetDouble(),
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            JsonValueKind.Null or JsonValueKind.Undefined => null,
            JsonValueKind.Array => e.EnumerateArray().Select(FromJson).ToList(),
            _ => e.EnumerateObject().ToDictionary(p => p.Name, p => FromJson(p.Value), StringComparer.OrdinalIgnoreCase),
        };

        public object? Variable(string name)
        {
            if (!template.Root.TryGetProperty("variables", out var variables))
                throw new InvalidOperationException($"{template.Module} has no variables");
            if (variables.TryGetProperty("copy", out var loops))
                foreach (var loop in loops.EnumerateArray().Where(l => l.GetProperty("name").GetString() == name))
                {
                    if (Eval(ArmExpression.Parse(loop.GetProperty("count").GetString()![1..^1])) is not long n)
                        return new Unknown($"variables('{name}') count");
                    return Enumerable.Range(0, (int)n).Select(i => new Scope(template, i).FromJson(loop.GetProperty("input"))).ToList();
                }
            var match = variables.EnumerateObject().FirstOrDefault(p => p.Name.Equals(name, StringComparison.OrdinalIgnoreCase));
            if (match.Value.ValueKind == JsonValueKind.Undefined)
                throw new InvalidOperationException($"{template.Module} has no variable {name}");
            return new Scope(template, null).FromJson(match.Value);
        }

        private object? Eval(ArmExpression.Node node) => node switch
        {
            ArmExpression.Literal l => l.Value,
            ArmExpression.Member m => Eval(m.Target) switch
            {
                Unknown u => u,
                IDictionary<string, object?> d => d.TryGetValue(m.Name, out var v) ? v
                    : throw new InvalidOperationException($"{template.Module}: no property {m.Name} in {Describe(d)}"),
                var other => throw new InvalidOperationException($"{template.Module}: .{m.Name} on {Describe(other)}"),
            },
            ArmExpression.Index i => (Eval(i.Target), Eval(i.Key)) switch
            {
                (Unknown u, _) => u,
                (_, Unknown u) => u,
                (IList<object?> list, long k) => list[(int)k],
                (IDictionary<string, object?> d, string k) => d[k],
                var (t, k) => throw new InvalidOperationException($"{template.Module}: cannot index {Describe(t)} with {Describe(k)}"),
            },
            ArmExpression.Call c => Call(c),
            _ => throw new InvalidOperationException("unexpected node " + node),
        };

        private object? Call(ArmExpression.Call c)
        {
            var name = c.Name.ToLowerInvariant();
            switch (name)
            {
                case "if":
                    return Eval(c.Args[0]) switch
                    {
                        bool b => Eval(c.Args[b ? 1 : 2]),
                        var other => new Unknown($"if({other})"),
                    };
                case "parameters":
                    return template.Parameter((string)Eval(c.Args[0])!);
                case "variables":
                    return Variable((string)Eval(c.Args[0])!);
                case "copyindex":
                    if (copyIndex is null) throw new InvalidOperationException($"{template.Module}: copyIndex() outside a loop");
                    var offset = c.Args.Select(Eval).OfType<long>().FirstOrDefault();
                    return copyIndex.Value + offset;
            }
            var args = c.Args.Select(Eval).ToList();
            bool anyUnknown = args.Any(a => a is Unknown);
            switch (name)
            {
                case "createarray": return args;
                case "createobject":
                    var o = new Dictionary<string, object?>(StringComparer.OrdinalIgnoreCase);
                    for (int k = 0; k + 1 < args.Count; k += 2) o[(string)args[k]!] = args[k + 1];
                    return o;
                case "concat":
                    if (args.Count > 0 && args.All(a => a is IList<object?>)) return args.Cast<IList<object?>>().SelectMany(a => a).ToList();
                    if (anyUnknown) return new Unknown("concat");
                    return string.Concat(args.Select(a => a?.ToString()));
                case "format":
                    return Format((string)args[0]!, args.Skip(1).ToList());
                case "resourceid": case "subscriptionresourceid": case "tenantresourceid": case "extensionresourceid":
                    return ResourceId(name, args);
                case "guid":
                    return "guid(" + string.Join(",", args.Select(Text)) + ")";
            }
            if (anyUnknown) return new Unknown($"{c.Name}(...)");
            return name switch
            {
                "length" => args[0] switch { string s => (long)s.Length, IList<object?> l => (long)l.Count, IDictionary<string, object?> d => (long)d.Count, var x => throw new InvalidOperationException("length of " + Describe(x)) },
                "empty" => args[0] switch { null => true, string s => s.Length == 0, IList<object?> l => l.Count == 0, IDictionary<string, object?> d => d.Count == 0, _ => false },
                "equals" => Equals(args[0], args[1]),
                "not" => !(bool)args[0]!,
                "and" => args.All(a => (bool)a!),
                "or" => args.Any(a => (bool)a!),
                "tolower" => ((string)args[0]!).ToLowerInvariant(),
                "toupper" => ((string)args[0]!).ToUpperInvariant(),
                "string" => Text(args[0]),
                "int" => Convert.ToInt64(args[0], CultureInfo.InvariantCulture),
                "bool" => args[0] is bool b ? b : bool.Parse((string)args[0]!),
                "union" => args.Cast<IDictionary<string, object?>>().SelectMany(d => d)
                    .GroupBy(p => p.Key, StringComparer.OrdinalIgnoreCase)
                    .ToDictionary(g => g.Key, g => g.Last().Value, StringComparer.OrdinalIgnoreCase),
                "contains" => args[0] switch
                {
                    string s => s.Contains((string)args[1]!, StringComparison.OrdinalIgnoreCase),
                    IList<object?> l => l.Contains(args[1]),
                    IDictionary<string, object?> d => d.ContainsKey((string)args[1]!),
                    _ => false,
                },
                // reference, list*, uniqueString, subscription, resourceGroup, deployment, environment, utcNow, ...
                _ => new Unknown($"{c.Name}(...)"),
            };
        }

        private static string Format(string format, List<object?> args)
        {
            var sb = new StringBuilder();
            for (int i = 0; i < format.Length; i++)
            {
                if (format[i] == '{' && i + 1 < format.Length && format[i + 1] == '{') { sb.Append('{'); i++; continue; }
                if (format[i] == '}' && i + 1 < format.Length && format[i + 1] == '}') { sb.Append('}'); i++; continue; }
                if (format[i] != '{') { sb.Append(format[i]); continue; }
                int end = format.IndexOf('}', i);
                var spec = format[(i + 1)..end].Split(':')[0];
                sb.Append(Text(args[int.Parse(spec, CultureInfo.InvariantCulture)]));
                i = end;
            }
            return sb.ToString();
        }

        // resourceId([subscriptionId], [resourceGroup], type, name1, ...): the id as a string with {?} for unknown parts.
        private static string ResourceId(string function, List<object?> args)
        {
            var scope = function switch
            {
                "extensionresourceid" => Text(args[0]),
                "subscriptionresourceid" => "/subscriptions/" + Unknown.Marker,
                "tenantresourceid" => "",
                _ => "/subscriptions/" + Unknown.Marker + "/resourceGroups/" + Unknown.Marker,
            };
            var rest = function == "extensionresourceid" ? args.Skip(1).ToList() : args;
            int typeAt = rest.FindIndex(a => a is string s && s.Contains('/') && s.Contains('.'));
            if (typeAt < 0) return scope + "/providers/" + string.Join("/", rest.Select(Text));
            var type = ((string)rest[typeAt]!).Split('/');
            var names = rest.Skip(typeAt + 1).Select(Text).ToList();
            var sb = new StringBuilder(scope).Append("/providers/").Append(type[0]);
            for (int k = 1; k < type.Length; k++) sb.Append('/').Append(type[k]).Append('/').Append(k - 1 < names.Count ? names[k - 1] : Unknown.Marker);
            return sb.ToString();
        }

        private static string Text(object? value) => value switch
        {
            null => "",
            string s => s,
            bool b => b ? "true" : "false",
            long l => l.ToString(CultureInfo.InvariantCulture),
            Unknown => Unknown.Marker,
            _ => JsonSerializer.Serialize(value),
        };

        private static string Describe(object? value) => value switch
        {
            null => "null",
            Unknown u => "an unknown value (" + u.Why + ")",
            _ => JsonSerializer.Serialize(value),
        };
    }
}

/// <summary>Parser for the ARM template expression language: literals, function calls, [index] and .member.</summary>
internal static class ArmExpression
{
    public abstract record Node;
    public sealed record Literal(object? Value) : Node;
    public sealed record Call(string Name, IReadOnlyList<Node> Args) : Node;
    public sealed record Index(Node Target, Node Key) : Node;
    public sealed record Member(Node Target, string Name) : Node;

    public static bool IsExpression(string s) => s.Length >= 2 && s[0] == '[' && s[^1] == ']' && !s.StartsWith("[[", StringComparison.Ordinal);

    public static Node Parse(string text)
    {
        int pos = 0;
        var node = ParseNode(text, ref pos);
        SkipSpace(text, ref pos);
        if (pos != text.Length) throw new FormatException($"unexpected '{text[pos..]}' in [{text}]");
        return node;
    }

    /// <summary>Every call in the tree, outermost first.</summary>
    public static IEnumerable<Call> Calls(Node node)
    {
        switch (node)
        {
            case Call c:
                yield return c;
                foreach (var a in c.Args) foreach (var inner in Calls(a)) yield return inner;
                break;
            case Index i:
                foreach (var inner in Calls(i.Target).Concat(Calls(i.Key))) yield return inner;
                break;
            case Member m:
                foreach (var inner in Calls(m.Target)) yield return inner;
                break;
        }
    }

    private static Node ParseNode(string s, ref int pos)
    {
        SkipSpace(s, ref pos);
        Node node;
        if (pos >= s.Length) throw new FormatException($"unexpected end of [{s}]");
        if (s[pos] == '\'')
        {
            var sb = new StringBuilder();
            pos++;
            while (true)
            {
                if (pos >= s.Length) throw new FormatException($"unterminated string in [{s}]");
                if (s[pos] == '\'')
                {
                    if (pos + 1 < s.Length && s[pos + 1] == '\'') { sb.Append('\''); pos += 2; continue; }
                    pos++;
                    break;
                }
                sb.Append(s[pos++]);
            }
            node = new Literal(sb.ToString());
        }
        else if (char.IsDigit(s[pos]) || (s[pos] == '-' && pos + 1 < s.Length && char.IsDigit(s[pos + 1])))
        {
            int start = pos++;
            while (pos < s.Length && char.IsDigit(s[pos])) pos++;
            node = new Literal(long.Parse(s[start..pos], CultureInfo.InvariantCulture));
        }
        else if (char.IsLetter(s[pos]) || s[pos] == '_')
        {
            int start = pos;
            while (pos < s.Length && (char.IsLetterOrDigit(s[pos]) || s[pos] is '_' or '.')) pos++;
            var name = s[start..pos];
            SkipSpace(s, ref pos);
            if (pos >= s.Length || s[pos] != '(')
            {
                node = name switch
                {
                    "true" => new Literal(true),
                    "false" => new Literal(false),
                    "null" => new Literal(null),
                    _ => throw new FormatException($"'{name}' is not a call in [{s}]"),
                };
            }
            else
            {
                pos++;
                var args = new List<Node>();
                SkipSpace(s, ref pos);
                if (s[pos] == ')') pos++;
                else
                    while (true)
                    {
                        args.Add(ParseNode(s, ref pos));
                        SkipSpace(s, ref pos);
                        if (s[pos] == ',') { pos++; continue; }
                        if (s[pos] == ')') { pos++; break; }
                        throw new FormatException($"expected , or ) at '{s[pos..]}' in [{s}]");
                    }
                node = new Call(name, args);
            }
        }
        else throw new FormatException($"unexpected '{s[pos..]}' in [{s}]");

        while (true)
        {
            SkipSpace(s, ref pos);
            if (pos < s.Length && s[pos] == '[')
            {
                pos++;
                var key = ParseNode(s, ref pos);
                SkipSpace(s, ref pos);
                if (s[pos] != ']') throw new FormatException($"expected ] in [{s}]");
                pos++;
                node = new Index(node, key);
            }
            else if (pos < s.Length && s[pos] == '.')
            {
                pos++;
                int start = pos;
                while (pos < s.Length && (char.IsLetterOrDigit(s[pos]) || s[pos] is '_' or '$')) pos++;
                node = new Member(node, s[start..pos]);
            }
            else return node;
        }
    }

    private static void SkipSpace(string s, ref int pos)
    {
        while (pos < s.Length && char.IsWhiteSpace(s[pos])) pos++;
    }
}
