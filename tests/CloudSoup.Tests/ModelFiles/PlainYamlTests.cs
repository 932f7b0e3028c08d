// The model card's recipe YAML (ModelFiles/PlainYaml.cs) must read back as the tree it came from: every string a
// string, every number, boolean and null as itself, under YAML 1.1's type rules (PyYAML's resolver, which mergekit
// reads recipes with: https://github.com/yaml/pyyaml/blob/main/lib/yaml/resolver.py) and through CloudSoup's own
// recipe parser.
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.ModelFiles;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace CloudSoup.Tests.ModelFiles;

public partial class PlainYamlTests
{
    public static readonly string[] Awkward =
    [
        "", " ", "yes", "No", "ON", "off", "y", "n", "true", "False", "null", "Null", "~", "1", "-1", "+1", "1.5", ".5", "1e3", "1E-05",
        "0x1F", "0o17", "017", "0b101", "1_000", "1:20", "190:20:30.15", ".inf", "-.Inf", ".nan", "2001-12-14", "2001-12-14t21:59:43.10-05:00",
        "a: b", "a:b", "#c", "a #b", " lead", "trail ", "- dash", "-", "?", "? x", "[x]", "{y}", "*alias", "&anchor", "!tag", "%dir", "@at",
        "`tick", "|", ">", "'single'", "\"double\"", "back\\slash", "line\nbreak", "tab\there", "cr\rhere", "é", "日本", "😀", "\u2028", "\u0085",
        "\u007f", "\ufeff", "builtin:mlp", "org/model-7b", "/abs/path.safetensors", "Qwen2.5-7B", "_x", "a,b", "a b", "=", "<<",
    ];

    [Fact]
    public void Every_awkward_string_reads_back_as_itself()
    {
        var tree = new JsonObject { ["strings"] = new JsonArray(Awkward.Select(s => (JsonNode?)JsonValue.Create(s)).ToArray()) };
        foreach (var s in Awkward) tree[s.Length == 0 ? "empty-key" : s] = s;   // as keys too
        AssertReadsBack(tree);
    }

    [Fact]
    public void Numbers_booleans_nulls_and_nesting_read_back_as_themselves()
    {
        var tree = JsonNode.Parse("""
            {"merge_method": "ties", "seed": 7, "weights": [1, 0.5, -2.25, 1E-05, 1.5E+20, 0, -0.0], "normalize": true, "int8_mask": false,
             "nothing": null, "empty": {}, "none": [], "models": [{"model": "a", "parameters": {"weight": [0.2, 0.8], "density": [{"filter": "bias", "value": 1}]}},
             {"model": "b", "parameters": {}}], "nested": [[1, [2, "x"]], [], {}, [{"a": [{"b": null}]}]]}
            """)!;
        AssertReadsBack(tree);
    }

    [Fact]
    public void A_resolved_recipe_parses_back_to_the_same_recipe()
    {
        string name = JsonSerializer.Serialize(string.Join(" | ", Awkward));
        var recipe = RecipeParser.Parse($"name: {name}\nmerge_method: ties\nbase_model: m0.safetensors\nseed: 3\n" +
            "models:\n  - {model: m1.safetensors, parameters: {weight: [0.2, 0.8], density: [{filter: bias, value: 1.0}, {value: 0.5}]}}\n" +
            "  - {model: \"odd`name/x\", parameters: {weight: 1e-5, density: 0.7}}\nparameters: {normalize: true, lambda: 1.5}\n" +
            "chat_template: \"{% for m in messages %}```{{ m['content'] }}````{% endfor %}\"\n");
        string yaml = PlainYaml.Write(RecipeJson.ToJson(recipe));
        Assert.Equal(RecipeJson.ToJsonString(recipe), RecipeJson.ToJsonString(RecipeParser.Parse(yaml)));
    }

    private static void AssertReadsBack(JsonNode tree)
    {
        string yaml = PlainYaml.Write(tree);
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        var read = ToJson(stream.Documents.Single().RootNode);
        Assert.True(JsonNode.DeepEquals(Canonical(tree), Canonical(read)), $"read back differently:\n{yaml}\nas {read?.ToJsonString()}");
    }

    // PyYAML's implicit resolvers for plain scalars (YAML 1.1).
    [GeneratedRegex(@"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$")]
    private static partial Regex Bool();
    [GeneratedRegex(@"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$")]
    private static partial Regex Int();
    [GeneratedRegex(@"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")]
    private static partial Regex Float();
    [GeneratedRegex(@"^(?:~|null|Null|NULL|)$")]
    private static partial Regex Null();
    [GeneratedRegex(@"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$")]
    private static partial Regex Timestamp();

    private static JsonNode? ToJson(YamlNode node) => node switch
    {
        YamlMappingNode m => new JsonObject(m.Children.Select(kv => KeyValuePair.Create(((YamlScalarNode)kv.Key).Value!, ToJson(kv.Value)))),
        YamlSequenceNode s => new JsonArray(s.Children.Select(ToJson).ToArray()),
        YamlScalarNode { Style: ScalarStyle.Plain } p => Plain(p.Value ?? ""),
        YamlScalarNode q => JsonValue.Create(q.Value),
        _ => throw new InvalidOperationException(node.GetType().Name),
    };

    private static JsonNode? Plain(string v)
    {
        if (Null().IsMatch(v)) return null;
        if (Bool().IsMatch(v)) return JsonValue.Create(v.ToLowerInvariant() is "yes" or "true" or "on");
        if (Int().IsMatch(v) || Float().IsMatch(v)) return JsonValue.Create(double.Parse(v, CultureInfo.InvariantCulture));
        if (Timestamp().IsMatch(v)) return JsonValue.Create("timestamp:" + v);
        return JsonValue.Create(v);
    }

    /// <summary>Numbers as doubles (JSON's 1 and YAML's 1 alike); everything else as it is.</summary>
    private static JsonNode? Canonical(JsonNode? node) => node switch
    {
        JsonObject o => new JsonObject(o.Select(kv => KeyValuePair.Create(kv.Key, Canonical(kv.Value)))),
        JsonArray a => new JsonArray(a.Select(Canonical).ToArray()),
        JsonValue v when v.GetValueKind() == JsonValueKind.Number => JsonValue.Create(double.Parse(v.ToJsonString(), CultureInfo.InvariantCulture)),
        JsonValue v => JsonNode.Parse(v.ToJsonString()),
        _ => null,
    };
}
