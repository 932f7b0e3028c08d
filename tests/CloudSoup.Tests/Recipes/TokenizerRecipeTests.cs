// The recipe's tokenizer keys, parsed as mergekit reads them (mergekit/config.py, mergekit/tokenizer/config.py):
// tokenizer_source / tokenizer.source name where the tokenizer comes from; what would need re-mapped embedding rows
// (union, tokens, pad_to_multiple_of) and mergekit's named chat templates are refused naming the field.
using CloudSoup.Control.Errors;
using CloudSoup.Control.Jobs;
using CloudSoup.Control.Recipes;

namespace CloudSoup.Tests.Recipes;

public class TokenizerRecipeTests
{
    private const string Models = "merge_method: linear\nmodels: [{model: a}, {model: b}]\n";

    [Theory]
    [InlineData("tokenizer_source: base", "tokenizer_source", null)]
    [InlineData("tokenizer_source: b", "tokenizer_source", "b")]
    [InlineData("tokenizer_source: other/tok", "tokenizer_source", "other/tok")]
    [InlineData("tokenizer: {source: base}", "tokenizer.source", null)]
    [InlineData("tokenizer: {source: a}", "tokenizer.source", "a")]
    public void Tokenizer_sources_parse_into_the_recipe(string line, string field, string? model)
    {
        var r = RecipeParser.Parse(Models + line);
        Assert.Equal(new TokenizerSource(field, model), r.TokenizerSource);
        Assert.Empty(r.Warnings);
    }

    [Theory]
    [InlineData("tokenizer_source: union", "tokenizer_source", "union re-maps the embedding rows")]
    [InlineData("tokenizer: {source: union}", "tokenizer.source", "union re-maps the embedding rows")]
    [InlineData("tokenizer: {}", "tokenizer.source", "is union when left out")]
    [InlineData("tokenizer: {source: base, tokens: {x: {source: a}}}", "tokenizer.tokens", "chooses embeddings for added tokens")]
    [InlineData("tokenizer: {source: base, pad_to_multiple_of: 64}", "tokenizer.pad_to_multiple_of", "pads the embedding rows")]
    [InlineData("tokenizer: {source: base, pad: 1}", "tokenizer.pad", "unknown key")]
    [InlineData("tokenizer: base", "tokenizer", "must be a mapping")]
    [InlineData("tokenizer_source: base\ntokenizer: {source: base}", "tokenizer", "not both")]
    [InlineData("chat_template: chatml", "chat_template", "'chatml' names one of mergekit's packaged templates")]
    [InlineData("chat_template: hello", "chat_template", "must be auto or a Jinja template")]
    [InlineData("chat_template: \"no braces but long enough to pass\"", "chat_template", "must be auto or a Jinja template")]
    public void What_cannot_be_done_the_mergekit_way_is_refused_naming_the_field(string line, string field, string message)
    {
        var e = Assert.Throws<CloudSoupException>(() => RecipeParser.Parse(Models + line));
        Assert.Equal(ErrorKind.InvalidRecipe, e.Kind);
        Assert.Equal(field, e.Field);
        Assert.StartsWith($"{field}: ", e.Message);
        Assert.Contains(message, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Chat_template_is_auto_or_the_jinja_text_and_both_round_trip_through_the_resolved_recipe_and_change_the_job_id()
    {
        var plain = RecipeParser.Parse(Models);
        var auto = RecipeParser.Parse(Models + "chat_template: auto");
        Assert.Equal(ChatTemplate.Auto, auto.ChatTemplate);
        const string jinja = "{% for m in messages %}{{ m['content'] }}\n{% endfor %}";
        var text = RecipeParser.Parse(Models + "tokenizer_source: b\nchat_template: |-\n  " + jinja.Replace("\n", "\n  "));
        Assert.Equal(jinja, text.ChatTemplate);

        var again = RecipeParser.Parse(RecipeJson.ToJsonString(text));
        Assert.Equal(text.ChatTemplate, again.ChatTemplate);
        Assert.Equal(text.TokenizerSource!.Model, again.TokenizerSource!.Model);
        Assert.Equal(RecipeJson.ToJsonString(text), RecipeJson.ToJsonString(again));

        var versions = new Dictionary<string, string> { ["a"] = "1", ["b"] = "2" };
        Assert.Equal(3, new[] { plain, auto, text }.Select(r => JobIds.Compute(r, versions)).Distinct().Count());
        Assert.DoesNotContain("chat_template", RecipeJson.ToJsonString(plain));       // job ids of recipes without it are unchanged
    }

    [Fact]
    public void A_chat_template_may_be_longer_than_other_scalars_but_is_still_bounded()
    {
        // Real chat templates run to several thousand characters; any other scalar stops at MaxScalarChars.
        string Template(int chars) => "{% for m in messages %}" + new string('x', chars - 23);
        string Quoted(int chars) => "\"" + Template(chars) + "\"";
        Assert.Equal(12_000, RecipeParser.Parse(Models + "chat_template: " + Quoted(12_000)).ChatTemplate!.Length);

        var tooLong = Assert.Throws<CloudSoupException>(() => RecipeParser.Parse(Models + "chat_template: " + Quoted(RecipeLimits.MaxChatTemplateChars + 1)));
        Assert.Equal("chat_template", tooLong.Field);
        Assert.Contains($"at most {RecipeLimits.MaxChatTemplateChars} are allowed", tooLong.Message);

        var name = Assert.Throws<CloudSoupException>(() => RecipeParser.Parse(Models + "name: " + Quoted(12_000)));
        Assert.Equal("name", name.Field);
        Assert.Contains($"at most {RecipeLimits.MaxScalarChars} are allowed", name.Message);
    }

    [Fact]
    public void A_tokenizer_source_that_is_not_a_model_is_among_the_references_the_job_reads()
    {
        Assert.Contains("other/tok", RecipeParser.Parse(Models + "tokenizer_source: other/tok").AllReferences);
        Assert.Equal(2, RecipeParser.Parse(Models + "tokenizer_source: b").AllReferences.Count);
    }
}
