// The uniform soup (Wortsman et al. 2022, arXiv 2203.05482, §2): the plain average of every ingredient.
using CloudSoup.Control.Methods;

namespace CloudSoup.Engine.Soups;

public sealed class UniformSoup : ISoup
{
    public MethodSignature Signature => SoupMethods.Uniform;

    public SoupChoice Choose(SoupSearch search, SoupContext context) =>
        new(search.Uniform(Enumerable.Range(0, search.Models.Count)), "plain average of every ingredient");
}
