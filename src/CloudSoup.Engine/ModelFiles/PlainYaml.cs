// The resolved recipe as block YAML for the model card (ModelCard.cs): a JSON tree (objects, arrays, strings, numbers,
// booleans, null) written out directly. YamlDotNet's reflection-driven serializer cost a small merge 40–70 ms on its
// first use (bench/README.md, "Fourth round"); the tree needs none of its generality.
//
// Reading the text back gives the same tree under YAML 1.1 and 1.2 alike (PyYAML, which mergekit uses, is 1.1): a
// string is written plain only when it starts with a letter, '_' or '/', holds nothing but letters, digits and
// "_./-", and is not one of 1.1's boolean or null words; every other string (numbers in text, "yes", "a: b", "#x",
// leading spaces, the empty string, anything non-ASCII) is double-quoted with YAML's escapes
// (https://yaml.org/spec/1.2.2/#double-quoted-style). Numbers are JSON's own text, with a dot added before a bare
// exponent. PlainYamlTests reads the output back with PyYAML's YAML 1.1 type rules and with the recipe parser.
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace CloudSoup.Engine.ModelFiles;

public static class PlainYaml
{
    private static readonly HashSet<string> Reserved = new(StringComparer.OrdinalIgnoreCase)
    {
        "y", "n", "yes", "no", "on", "off", "true", "false", "null",
    };

    /// <summary>The tree as block YAML, ending with a newline ("{}" or "[]" alone for an empty root).</summary>
    public static string Write(JsonNode? root)
    {
        var sb = new StringBuilder();
        switch (root)
        {
            case JsonObject { Count: > 0 } o: Object(sb, o, 0); break;
            case JsonArray { Count: > 0 } a: Array(sb, a, 0); break;
            default: sb.Append(Scalar(root)).Append('\n'); break;
        }
        return sb.ToString();
    }

    private static void Object(StringBuilder sb, JsonObject o, int indent, bool firstInline = false)
    {
        bool first = true;
        foreach (var (key, value) in o)
        {
            if (!(first && firstInline)) sb.Append(' ', indent);
            first = false;
            sb.Append(String(key)).Append(':');
            Value(sb, value, indent);
        }
    }

    private static void Array(StringBuilder sb, JsonArray a, int indent)
    {
        foreach (var item in a)
        {
            sb.Append(' ', indent).Append('-');
            switch (item)
            {
                case JsonObject { Count: > 0 } o:
                    sb.Append(' ');
                    Object(sb, o, indent + 2, firstInline: true);
                    break;
                case JsonArray { Count: > 0 } inner:
                    sb.Append('\n');
                    Array(sb, inner, indent + 2);
                    break;
                default: sb.Append(' ').Append(Scalar(item)).Append('\n'); break;
            }
        }
    }

    /// <summary>What follows "key:": a scalar on the same line, or a nested block on the next lines.</summary>
    private static void Value(StringBuilder sb, JsonNode? value, int indent)
    {
        switch (value)
        {
            case JsonObject { Count: > 0 } o:
                sb.Append('\n');
                Object(sb, o, indent + 2);
                break;
            case JsonArray { Count: > 0 } a:
                sb.Append('\n');
                Array(sb, a, indent);   // a sequence may sit at its key's indentation, as YAML writers commonly do
                break;
            default:
                sb.Append(' ').Append(Scalar(value)).Append('\n');
                break;
        }
    }

    private static string Scalar(JsonNode? node) => node switch
    {
        null => "null",
        JsonObject => "{}",
        JsonArray => "[]",
        JsonValue v => v.GetValueKind() switch
        {
            JsonValueKind.String => String(v.GetValue<string>()),
            JsonValueKind.Number => Number(v.ToJsonString()),
            JsonValueKind.True => "true",
            JsonValueKind.False => "false",
            _ => "null",
        },
        _ => "null",
    };

    /// <summary>JSON's number text, with ".0" before a bare exponent ("1E-05" → "1.0E-05"): YAML 1.1 reads a float only with a dot.</summary>
    private static string Number(string json)
    {
        int e = json.IndexOfAny(['e', 'E']);
        return e > 0 && !json.Contains('.') ? json[..e] + ".0" + json[e..] : json;
    }

    private static string String(string s) => IsPlain(s) ? s : Quoted(s);

    private static bool IsPlain(string s)
    {
        if (s.Length == 0 || Reserved.Contains(s)) return false;
        if (!(char.IsAsciiLetter(s[0]) || s[0] is '_' or '/')) return false;
        foreach (char c in s)
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '/' or '-')) return false;
        return true;
    }

    private static string Quoted(string s)
    {
        var sb = new StringBuilder(s.Length + 2).Append('"');
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\t': sb.Append("\\t"); break;
                case '\r': sb.Append("\\r"); break;
                default:
                    // Printable ASCII as it is; everything else by its code point (\U and eight digits beyond the BMP).
                    if (c is >= ' ' and <= '~') sb.Append(c);
                    else if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
                        sb.Append("\\U").Append(char.ConvertToUtf32(c, s[++i]).ToString("X8", CultureInfo.InvariantCulture));
                    else sb.Append("\\u").Append(((int)c).ToString("X4", CultureInfo.InvariantCulture));
                    break;
            }
        }
        return sb.Append('"').ToString();
    }
}
