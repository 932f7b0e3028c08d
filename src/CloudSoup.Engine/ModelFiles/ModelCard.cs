// README.md next to the merged weights: the model card the Hugging Face Hub shows. Its YAML front matter holds the
// metadata the Hub reads (https://huggingface.co/docs/hub/model-cards: base_model, base_model_relation, library_name,
// tags); the tags include "mergekit" and "merge" as mergekit's cards do (mergekit/card.py), so merges made from
// mergekit recipes are found the same way. The body says how the model was made: the method, the ingredients, the
// recipe as CloudSoup resolved it (as YAML by PlainYaml), and the evaluation when the job had one.
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using CloudSoup.Control.Methods;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Evaluation;
using CloudSoup.Engine.Soups;

namespace CloudSoup.Engine.ModelFiles;

public static partial class ModelCard
{
    public static readonly IReadOnlyList<string> Tags = ["mergekit", "merge", "cloudsoup"];

    // The Hugging Face cache keeps a repository owner/name under models--owner--name/snapshots/<revision>
    // (https://huggingface.co/docs/huggingface_hub/guides/manage-cache); repository names cannot contain "--".
    [GeneratedRegex(@"(?:^|/)models--(?<id>[A-Za-z0-9][A-Za-z0-9_.\-]*?(?:--[A-Za-z0-9][A-Za-z0-9_.\-]*)?)/snapshots/[^/]+")]
    private static partial Regex HubCachePath();

    /// <summary>
    /// The Hub repository a model reference is a copy of, when CloudSoup can tell: a folder inside a Hugging Face cache
    /// (models--owner--name/snapshots/…). Other references are local paths or blob paths, which say nothing about the Hub.
    /// </summary>
    public static string? HubId(string reference)
    {
        var m = HubCachePath().Match(reference.Replace('\\', '/'));
        if (!m.Success) return null;
        string id = m.Groups["id"].Value.Replace("--", "/");
        return id.Count(c => c == '/') <= 1 && !id.Contains("..") && !id.EndsWith('.') ? id : null;
    }

    public sealed record Input(
        Recipe Recipe, MethodSignature Method, string? JobId, bool HasConfig, EvaluationReport? Evaluation, SoupReport? Soup, string? Verdict);

    public static string Render(Input card)
    {
        var recipe = card.Recipe;
        var sb = new StringBuilder();
        var hubIds = recipe.InputModels.Select(HubId).OfType<string>().Distinct().ToList();
        sb.Append("---\n");
        if (hubIds.Count > 0)
        {
            sb.Append("base_model:\n");
            foreach (var id in hubIds) sb.Append("- ").Append(id).Append('\n');
            sb.Append("base_model_relation: merge\n");
        }
        if (card.HasConfig) sb.Append("library_name: transformers\n");
        sb.Append("tags:\n");
        foreach (var tag in Tags) sb.Append("- ").Append(tag).Append('\n');
        sb.Append("---\n");

        sb.Append("# ").Append(Inline(recipe.Name ?? card.JobId ?? "Merged model")).Append("\n\n");
        sb.Append("This model is a merge of pre-trained models, made by CloudSoup from a mergekit-compatible recipe.\n\n");
        sb.Append("## Merge details\n\n### Merge method\n\n");
        sb.Append("This model was merged using the `").Append(card.Method.Name).Append("` merge method");
        if (recipe.BaseModel != null) sb.Append(" with ").Append(Code(recipe.BaseModel)).Append(" as the base");
        sb.Append(": ").Append(card.Method.Description).Append('\n');
        if (card.Soup is { } soup)
            sb.Append("\nThe soup's mixing coefficients were chosen on held-out data (").Append(Inline(soup.Rule)).Append(").\n");

        sb.Append("\n### Models merged\n\n");
        var others = recipe.InputModels.Where(m => m != recipe.BaseModel).ToList();
        sb.Append(others.Count == 1 ? "The following model was" : "The following models were").Append(" included in the merge:\n\n");
        foreach (var m in others)
        {
            sb.Append("* ").Append(Code(m));
            if (card.Soup?.Ingredients.FirstOrDefault(i => i.Model == m) is { } ingredient)
                sb.Append(ingredient.Used ? $" (coefficient {ingredient.Coefficient.ToString("0.####", CultureInfo.InvariantCulture)})" : " (not used by the soup)");
            sb.Append('\n');
        }

        sb.Append("\n### Configuration\n\nThe following recipe, as CloudSoup resolved it, produced this model:\n\n");
        string yaml = PlainYaml.Write(RecipeJson.ToJson(recipe));
        string fence = Fence(yaml);
        sb.Append(fence).Append("yaml\n").Append(yaml.TrimEnd('\n')).Append('\n').Append(fence).Append('\n');

        if (card.Evaluation is { } ev)
        {
            sb.Append("\n## Evaluation\n\n");
            if (card.Verdict != null) sb.Append(Inline(card.Verdict)).Append("\n\n");
            sb.Append("Evaluated with ").Append(Code(ev.EvalModel)).Append(" on ").Append(Code(ev.Data))
              .Append(ev.Test != null ? " (held-out) and " + Code(ev.Test) + " (test)" : " (held-out)").Append(".\n\n");
            sb.Append("| model | held-out accuracy | held-out loss | test accuracy | test loss |\n|---|---:|---:|---:|---:|\n");
            foreach (var m in ev.Ingredients.Append(ev.Merged))
                sb.Append("| ").Append(m == ev.Merged ? "**merged**" : Code(m.Model).Replace("|", "\\|")).Append(" | ").Append(Pct(m.HeldOut.Accuracy))
                  .Append(" | ").Append(Loss(m.HeldOut.Loss)).Append(" | ").Append(m.Test is { } t ? Pct(t.Accuracy) : "–")
                  .Append(" | ").Append(m.Test is { } t2 ? Loss(t2.Loss) : "–").Append(" |\n");
        }
        return sb.ToString();
    }

    /// <summary>A code fence longer than any run of backticks in <paramref name="text"/> (CommonMark), so a template inside cannot close it.</summary>
    private static string Fence(string text)
    {
        int longest = 0, run = 0;
        foreach (char c in text) longest = Math.Max(longest, run = c == '`' ? run + 1 : 0);
        return new string('`', Math.Max(3, longest + 1));
    }

    /// <summary>One line of card text: control characters (a newline would end a heading or a table row) become spaces.</summary>
    private static string Inline(string text) => new(text.Select(c => char.IsControl(c) ? ' ' : c).ToArray());

    /// <summary>A code span for a reference, with a fence longer than any backtick run inside it.</summary>
    private static string Code(string text)
    {
        string inline = Inline(text);
        int longest = 0, run = 0;
        foreach (char c in inline) longest = Math.Max(longest, run = c == '`' ? run + 1 : 0);
        string fence = new('`', longest + 1);
        return longest > 0 ? $"{fence} {inline} {fence}" : $"`{inline}`";
    }

    private static string Pct(double accuracy) => (100 * accuracy).ToString("0.00", CultureInfo.InvariantCulture) + "%";

    private static string Loss(double loss) => loss.ToString("0.0000", CultureInfo.InvariantCulture);
}
