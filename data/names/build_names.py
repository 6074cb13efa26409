"""Regenerate the name lists the privacy guard uses (given_names.txt, surnames.txt).

Source: the person providers of the Faker package (MIT licence), Latin-script locales
only, plus a short supplement of transliterated names written for this project (public
domain) for communities that Faker's Latin-script locales barely cover (Arabic, Somali,
Persian, Chinese, Korean, Japanese, Vietnamese, Igbo, Ukrainian, Russian).

Faker is needed only to regenerate the lists, never at run time:

    pip install "Faker==40.63.0"
    python data/names/build_names.py

The run is deterministic: the same Faker version gives byte-identical files.

Why the exclusion lists: the guard flags a word from the given-name list wherever it
stands, including at the start of a sentence, and a word from the surname list when it is
capitalised inside a sentence. A list word that is also an ordinary English word ("Will",
"May", "Hope", "Grace", "Mark", "Frank", "Said", "Can"...) would flag clean notes, so such
words are left out here. They are still caught where the structure shows a person: after
a title ("Mrs Grace", "Dr Young") or in front of a listed surname ("Grace Okafor"), and a
surname such as Brown is still caught after a listed given name ("Ellen Brown").
"""

from __future__ import annotations

import importlib
import re
import unicodedata
from pathlib import Path

HERE = Path(__file__).resolve().parent

LOCALES = (
    "en_US en_GB en_IE en_NZ en_IN en_PK en_TH de_DE de_AT de_CH fr_FR fr_CA fr_BE fr_CH "
    "es_ES es_MX es_AR es_CO es_CL it_IT nl_NL nl_BE pl_PL pt_BR pt_PT tr_TR sv_SE da_DK "
    "no_NO fi_FI cs_CZ sk_SK ro_RO hu_HU hr_HR sl_SI lt_LT lv_LV et_EE id_ID yo_NG sw "
    "tw_GH zu_ZA az_AZ vi_VN"
).split()

# Names shorter than this are dropped: two-letter tokens ("Al", "Jo", "Do", "Ma", "Li")
# collide with words, abbreviations and initials far more often than they name someone.
MIN_LENGTH = 3

SUPPLEMENT_GIVEN = """
Mohammed Muhammad Mohamed Mohammad Mohamud Ahmed Ahmad Mahmoud Mustafa Mostafa Omar Umar
Othman Osman Yusuf Youssef Yousef Ibrahim Ismail Hamza Hussein Hussain Hassan Hasan Ali
Khalid Khaled Tariq Bilal Karim Kareem Samir Sami Walid Waleed Rashid Nabil Nasser Faisal
Imran Irfan Zain Zayn Ayaan Idris Abdullah Abdul Abdelrahman Abdirahman Abdi Fatima Fatma
Fatuma Aisha Ayesha Aicha Khadija Maryam Mariam Zainab Zaynab Amina Aminata Layla Leila
Laila Noor Nour Hana Hanan Rania Salma Samira Yasmin Yasmine Jamila Nadia Huda Asma Farah
Dalia Reem Iman Safiya Sumaya Hodan Hawa Ayan Fadumo Ladan Shukri Nimo Ifrah Zahra Soraya
Shirin Parisa Leyla Nasrin Roya Golnar Dariush Reza Mehdi Hossein Farhad Kian Arash Babak
Navid Omid Amir Darius
Wei Ming Jun Hui Yan Ying Xiao Xin Jing Lei Hao Jie Fang Mei Ling Qing Tao Zhen Xiu Jian
Yong Qiang Hong Ping Feng Zhi Jia Hua Min Xiang Yun Xuan Zihan Yuxuan Haoran Zixuan Yichen
Meiling Xiaoming
Hiroshi Takashi Kenji Yuki Haruto Sota Yui Aoi Hina Yuna Akira Kaito Riku Daiki Naoko
Keiko Yoko Kumiko Hiroko Emi Yuko Satoshi Kenta Shota Takumi Yuta Haruka Misaki Ayaka
Minjun Seoyeon Jihoon Jiwoo Seojun Haeun Doyun Jiho Hyun Joon Eunji Hyejin Jinwoo Sungmin
Jisoo Soojin Younghee
Anh Bao Binh Chau Cuong Dung Duc Hai Hanh Hieu Hoa Hoang Hung Huong Huy Khanh Linh Minh
Ngoc Nhung Phuong Quang Quynh Thanh Thao Thuy Trang Trung Tuan Tuyet Viet Vinh Xuan
Chinedu Chioma Chukwuemeka Obinna Ngozi Nkechi Ifeoma Emeka Uche Adaeze Chidi Amaka Nnamdi
Oluchi Kelechi Ikenna Chiamaka Ebere Obiora Onyeka
Olena Oksana Olha Iryna Tetiana Nataliia Yuliia Svitlana Andriy Oleksandr Oleksiy Dmytro
Serhiy Mykola Vasyl Taras Bohdan Yaroslav Volodymyr Viktoriia Dmitry Dmitri Aleksandr
Alexei Aleksei Sergey Sergei Andrei Mikhail Vladimir Nikolai Yuri Pavel Anastasia Ekaterina
Yekaterina Natalia Natalya Svetlana Tatiana Tatyana Irina Yulia Ksenia Darya Polina Alina
Ludmila Galina
Ayşe Emine Hatice Zeynep Elif Meryem Şerife Zehra Hanife Merve Özlem Esra Büşra Kübra Ebru
Selin Ece Gül Mehmet Ahmet Hüseyin İbrahim İsmail Murat Ömer Halil Süleyman Mahmut Recep Emre
Burak Cem Deniz Serkan Volkan Onur Tuğba Gizem
Giorgos Georgios Kostas Konstantinos Yiannis Ioannis Dimitris Nikos Nikolaos Christos Panagiotis
Vasilis Eleni Katerina Maria Despina Sofia Vasiliki Georgia Panagiota Stavros Spyros Thanos
Ciarán Ciaran Pádraig Padraig Eilidh Gwen Dafydd Rhys Iwan Gethin Cerys Siân Sian Aoife Niamh
Saoirse Caoimhe Oisín Oisin Tadhg Róisín Roisin Seán Éabha Sinéad Sinead Máire Eoghan Ruairí
Tendai Farai Rutendo Tatenda Tinashe Nyasha Chipo Tafadzwa Kudzai Rufaro Tsitsi Nokuthula Thabo
Sipho Lindiwe Thandiwe Nkosana Zanele Bongani Themba Nomvula
Oluwaseun Olusegun Segun Abimbola Folake Bukola Funmilayo Temitope Oluwadamilare Ayodele
Babatunde Tunde Chidinma Chinonso Ifeanyi Nneka Obioma Adaora Ebuka
Wanjiru Wanjiku Njeri Kamau Otieno Achieng Akinyi Atieno Odhiambo Kipchoge Chebet Mwangi
Abebe Tesfaye Selam Meron Hiwot Dawit Yonas Tsion Bethlehem Mekdes Eyerusalem Kidane
Shazia Rukhsana Parveen Nasreen Shabana Farzana Tahmina Rubina Zubair Junaid Adeel Waqas Usman
Shahid Asif Kashif Naveed Rizwan Sajid Tanvir Shamima Nusrat Sadia Rashida Mahmuda
Haruki Takeshi Tatsuya Hiroki Kazuki Shinji Ryo Naoki Masato Yusuke Kaori Ayumi Megumi Tomoko
Xiaoyu Jianhua Zhiwei Xiaoling Yuting Jiahui Zhihao Mingyu Xinyi Yiming Weiwei
Małgorzata Malgorzata Katarzyna Agnieszka Joanna Magdalena Zofia Krzysztof Grzegorz Zbigniew
Wojciech Tadeusz Jadwiga Mykhailo Yurii Petro Halyna Nadiia
Xochitl Itzel Ximena Guadalupe Yolanda Araceli Maricela Lupita Alejandra
"""

SUPPLEMENT_SURNAMES = """
Wang Zhang Liu Chen Yang Huang Zhao Zhou Sun Zhu Guo Lin Luo Gao Zheng Liang Xie Tang Feng
Deng Cao Peng Zeng Xiao Tian Dong Pan Yuan Cai Jiang Cheng Ding Shen Yao Jin Wong Chan
Cheung Leung Lau Tsang Chow Chiu Yip Kwok Tse
Kim Lee Park Choi Jung Jeong Kang Cho Yoon Jang Lim Seo Shin Kwon Hwang Ahn Hong Jeon Bae
Baek Heo Yoo Shim
Sato Suzuki Takahashi Tanaka Watanabe Ito Yamamoto Nakamura Kobayashi Kato Yoshida Yamada
Sasaki Yamaguchi Matsumoto Inoue Kimura Hayashi Shimizu Yamazaki Ikeda Hashimoto Ishikawa
Ogawa Okada Hasegawa Fujita Goto Kondo Murakami Endo Aoki Sakamoto Saito Nishimura Fukuda
Miura Fujii Okamoto Matsuda Nakagawa Nakano Harada Tamura Takeuchi Kaneko Wada Nakayama
Ishii Yamashita Ueda Morita Shibata Kudo Yokoyama Miyazaki Miyamoto Uchida Takagi Ando
Taniguchi Maruyama Imai Takada Fujiwara Takeda Murata Ueno Sugiyama Masuda Sugawara
Hirano Otsuka Kubo Matsui Iwasaki Sakurai Kinoshita Noguchi Matsuo Nomura Kikuchi Onishi
Sugimoto Arai
Nguyen Tran Pham Hoang Huynh Phan Dang Bui Ngo Duong Truong Dinh Trinh Luu Quach
Abdullah Ahmed Ali Hassan Hussein Ibrahim Khalil Mahmoud Mansour Mostafa Nasser Saleh
Salem Youssef Haddad Khoury Nassar Aziz Hamdan Qureshi Siddiqui Chaudhry Chaudhary Malik
Akhtar Iqbal Rehman Rahman Hussain Mirza Javed Anwar Begum Uddin Miah Ullah Khatun Sheikh
Shaikh Abdi Warsame Farah Jama Mohamud Osman Yusuf Egal Hersi Dahir Gedi Aden
Ahmadi Hosseini Mohammadi Rezaei Moradi Karimi Jafari Rahimi Hashemi Sadeghi Rostami
Kazemi Azizi Ebrahimi Ghasemi Mousavi Tehrani Shirazi Farahani
Yilmaz Kaya Demir Sahin Celik Yildiz Yildirim Ozturk Aydin Ozdemir Arslan Dogan Kilic
Aslan Cetin Kara Koc Ozkan Simsek Polat Korkmaz Ozcan Erdogan Yavuz Aksoy Tekin Cakir Guler
Bulut Karaca Gunes Bozkurt Yılmaz Şahin Çelik Yıldız Öztürk Aydın Özdemir Doğan Kılıç Çetin
Koç Özkan Şimşek Özcan Çakır Güler Güneş
Okafor Okonkwo Eze Nwosu Okeke Nwankwo Chukwu Okoro Onyeka Nnadi Ugwu Obiora Okoye Anyanwu
Ogbu Nwachukwu Ezeh Onwuka Uzoma Bello Abubakar Musa Usman Sani Garba Danjuma
Shevchenko Kovalenko Bondarenko Tkachenko Kravchenko Oliynyk Koval Boyko Melnyk Lysenko
Marchenko Rudenko Savchenko Petrenko Moroz Pavlenko Kuzmenko Ivanenko Ponomarenko Kharchenko
Ivanov Smirnov Kuznetsov Popov Vasiliev Petrov Sokolov Mikhailov Novikov Fedorov Morozov
Volkov Alekseev Lebedev Semenov Egorov Pavlov Kozlov Stepanov Nikolaev Orlov Andreev
Makarov Nikitin Zakharov Zaitsev Solovyov Borisov Yakovlev Grigoriev Romanov
Papadopoulos Georgiou Papadakis Nikolaidis Dimitriou Konstantinou Christodoulou Vlachos
Adeyemi Adebayo Ogunleye Oyelaran Oladipo Afolabi Babatunde Olawale Ogunbiyi Okonjo Obi
Tesfaye Bekele Haile Girma Tadesse Alemu Gebremedhin Mutua Wanjiru Kamau Otieno Ochieng Kiprop
Mokoena Khumalo Zulu Mahlangu Moyo Chikwanha Mutasa Nyathi
MacLeod MacDonald MacKenzie MacKay McLeod McKenzie O'Connor O'Neill O'Reilly Ní Mhurchú
Colombo Ferraro Ricci Marino Greco Bruno Gallo Conti Mancini Lombardi Moretti Barbieri
"""

# Ordinary English words that some locale lists as a given name or surname. Chosen by
# reading every list entry that is also a frequent English word: the test is whether a
# clinician could plausibly write it capitalised (at a sentence start, in a heading, in
# quotes) without meaning a person.
COMMON_WORDS = """
abbey able ace ada ade alas alba ale alf ama amber among amor anon ant ants ante archer
aria art arts aura aurora autumn baba bail bale bali ball ban bank banks barber baron barr
bas basil bass bath beach bean beard beat beau beer bell belle bent berry best bien big
bird birch bishop bite bitten black blanc blank block blot blue bond bones boon booth
bowler bowman brand brands bravo brick bridge bridges bright brink brit brook brooks
brown buck bud bull bullock burns burr bury bush butcher butler bye cain cal camp camps
can canal candy cannon cant car cares carol carpenter carrier carry carton case cases chad
chair champagne chance chapman char charity chase cherry chi church clay clear close coca
coke cole colon comfort comment company constant contractor cook cop coral cord corona
corral cousin cousins craven creed crane cross crown cruise crystal curry curt dada daisy
dale dam darling dash date day dean decker deer dee deep destiny dew dey diamond dick die
din diver divine dodo doe dolly domino don dove drake drew drop drum dub duke dune dyer
early earl ebony eden edit elder else eta ever fair faith fall farmer fay fee feline ferry
field fields fink finch fisher fit flood floor flowers font foot ford forest forget forum
foster fox franc frank free freely fresh frost fry fuller gala gale gall gamble garland
garner gay gem gent gentry gill glass glasses glen golden good gore grab grace grand
grant gravel gray green grey grill grit gross grunt guard gun gunner gust gut guy hall
ham hammer hand handler hardy hare harm harmony harsh hart hasty hawk hay hazel heath
hearty hell helm herd heron herring hill hills hog holder holly homer honey hood hook
hoof hope horn house huff hug hunt hunter ion iris ivory ivy jade jail jay jet job joke
joy judge jug junior junk just kale karma kick kidney killer kind king kink kiss kite
knight lacy lad lady lamb lament lance land lander lane lass law lawless lead lean leech
leach lees lemon lie lien lies lily line link lion lis list little loan lock lone long
loo loon loot lord lore love low loyal lucid lucky luster mace mack mad made major mall
mallet man mane mare mark market marks marine marry marsh martial mason mass master mast
mate mater may mayor melody mentor merchant merry mesa meta mil mile miles millet miner
mint misty mitt moan monk moody moon moor moors mora more morrow moss most mount mountain
must nail nana nee neo nickel noble north nova oak odd olive owe page pages palm pant pap
par para parent park parks pastor pat patience pawn paw peace peacock pearl peck peer
pellet penny pent per petty pier pike pine pink piper plank plaza pole polo pool pop pope
post potter power powers prince priest prima provost puck quill raid rain ram rand rave
raven ray read reader real red reed rein rex rice rich riddle ridge ring river roach rob
robin rock rode roe roman rook room roots rose rosemary rout ruby rule rush rust rut
saga safari said sage salmon sand sandy sane sans saint sass savage sawyer scarlet scot
senator server seven sever sexton sharp shepherd sherry shine short silk silver sine
singer sip sire skinner sky slater sly small smart snow sol solar sole sonata soon
sparks spring springer stack stark steed steer stein steward stock stone storey storm
story stout strand street strong such summer sun sunny swallow swan sweet swift tack
tailor tan tank tanner tate tea temple thatcher theres tiara til till toner tone tor
tore torrent toy tri trinity tron trout tudor turk tusk tutu una uno urban us vain
valentine valid vale vega verde vial vigil viking villa vine violet vita wade wage wall
walls ward ware warmer warrior water waters way weaver webster west wheeler white wild
wilder will willow wise wit wolf wood woods wren young
aba aud bas che conn dom dev esa gal gunn ibn indy lan lo loo maj manu nam om pak pol rama
sai sayin sem siri taj tai tor vid yan elon
alta nada paz vida toms macs asu nacho janus mio
max jan sep mar
the over come lot side age bill sad royal genesis ascension tome ide aga ibis roar greet
mart imam tory kaiser albino azalea magnolia poppy brandy dung hung pal henna campo mille
vino dag nae wadi yar sil toon veer ville rune senna sander duma gene angel min van queen
june august back put lower key san gas winter doctor basic bar magic bus begin victory zero
branch topic mac pan sec rio poll las hull moron lace convey sur falcon dos das mas siren
medic bogus lice soot sandal goblet frisk cairn baa boba tur sade pare neve anima agate
auger cornet hummer holler ender bock barman comer canny supple leek knoll och liber lobo
mandala alamo canton cote daw widen toro kos asp hove soprano bigot boner butte coll massa
masse pau yogi wiener payer sherlock hacker orchard cock bonnet bourgeois deacon
ties mats mans ping yen dries lotta sos hella liga nas del indie front held weeks parts sales
lips gates rivers suits tours bros rails swords spies monks richer eco mets rom grande downs
sellers darija
"""

# Capitalised words the lists contain that name places, peoples, languages, faiths,
# holidays, brands or theorists: never a client's name when written on their own in a
# note ("moved from Jordan", "a Christian family", "a Kleinian reading").
NOT_PERSONS = """
america asia africa europe india china jordan israel georgia kenya chelsea trinidad
alberta virginia carolina dakota sydney paris london madrid berlin washington brooklyn
phoenix sierra santa kingston devon medina bergen basel olympia orleans birmingham
hollywood jerusalem lanka monaco lagos toledo valencia porto albuquerque spain poland
ireland holland england scotland wales france germany italy
english french german danish czech philippine georgian baptist christian christ jesus
islam muslim allah buddha nazi isis lenin obama gandhi mozart hermes mercedes gucci
ferrari renault bentley benz chevrolet guinness noel eve easter yoga nyc org aus uss op
cis ii iii iv vi
freud jung klein winnicott bion kohut kernberg bowlby ainsworth rogers beck ellis
linehan safran muran luborsky bordin yalom lacan adler erikson piaget maslow pavlov
minuchin bowen satir perls horney fonagy bateman gottman shapiro porges kolk siegel
hong kong montana york oman angeles bradford bolton lyon bilbao houston
raleigh richmond lima schore mahler fairbairn balint ferenczi racker heimann kleinian hamilton likert
"""

_LATIN = re.compile(r"^[A-Za-z\u00C0-\u024F\u1E00-\u1EFF'’-]+$")
_FOLD = str.maketrans({"ß": "ss", "ı": "i", "ł": "l", "Ł": "L", "ø": "o", "Ø": "O",
                       "æ": "ae", "Æ": "Ae", "đ": "d", "Đ": "D", "’": "'"})


def ascii_fold(name: str) -> str:
    """"Özlem" -> "Ozlem": notes are often typed without diacritics."""
    decomposed = unicodedata.normalize("NFKD", name.translate(_FOLD))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _words(block: str) -> set[str]:
    return {w.casefold() for w in block.split()}


def _faker_names() -> tuple[set[str], set[str]]:
    given, surnames = set(), set()
    for locale in LOCALES:
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        for attr in sorted(vars(provider)):
            if re.fullmatch(r"first_names\w*|middle_names\w*", attr):
                target = given
            elif re.fullmatch(r"(\w+_)?last_names\w*", attr):
                target = surnames
            else:
                continue
            values = getattr(provider, attr)
            if isinstance(values, (str, property)) or not hasattr(values, "__iter__"):
                continue
            for entry in values:
                # Double names ("Juan Ignacio", "de la Cruz") enter as their capitalised parts.
                for part in str(entry).split():
                    if "-" not in part and _LATIN.match(part) and part[0].isupper():
                        target.add(unicodedata.normalize("NFC", part))
    return given, surnames


def _clean(names: set[str], excluded: set[str]) -> list[str]:
    out = set()
    for name in names:
        for form in {name, ascii_fold(name)}:
            if len(form) >= MIN_LENGTH and form.casefold() not in excluded \
                    and ascii_fold(form).casefold() not in excluded:
                out.add(form)
    return sorted(out, key=lambda s: (s.casefold(), s))


def build() -> dict[str, list[str]]:
    given, surnames = _faker_names()
    given |= set(SUPPLEMENT_GIVEN.split())
    surnames |= set(SUPPLEMENT_SURNAMES.split())
    excluded = _words(COMMON_WORDS) | _words(NOT_PERSONS)
    return {"given_names.txt": _clean(given, excluded), "surnames.txt": _clean(surnames, excluded)}


def main() -> None:
    for filename, names in build().items():
        header = f"# {filename}: generated by build_names.py; see README.md. One name a line.\n"
        (HERE / filename).write_text(header + "\n".join(names) + "\n", encoding="utf-8")
        print(f"{filename}: {len(names)} names")


if __name__ == "__main__":
    main()
